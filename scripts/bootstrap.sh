# Shared by run.sh and test.sh: make sure uv is there and the environment is in sync.
# shellcheck shell=bash
export UV_PYTHON_DOWNLOADS=never
if python3 -m uv --version >/dev/null 2>&1; then
  UV=(python3 -m uv)
elif command -v uv >/dev/null 2>&1; then
  UV=(uv)
else
  echo "Installing uv (Python package manager)…"
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
  UV=(python3 -m uv)
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

apt_install() {
  # Install Debian packages only when missing; `apt-get update` once.
  echo "Installing Debian packages: $*"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
