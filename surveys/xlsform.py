"""placeholder"""


def to_xlsform(instrument, path):
    raise NotImplementedError


def from_xlsform(path):
    raise NotImplementedError
