"""Mission planning: pure functions, no database.

Given the candidates, the tests each channel needs, the shoppers and their declared conflicts,
the scenarios and the collection period, build every mission of a campaign:

- every candidate gets exactly its per-channel count of tests, plus a second test in a channel
  tested once per candidate when it is among that channel's replicate draw (below);
- the tests of a channel are spread over the period (the n-th test in the n-th sub-window);
- scenarios rotate, so consecutive candidates get different scenarios of a channel;
- no shopper tests an authority they declared a conflict with;
- shopper loads stay within ±1 of each other (a flow with lower bounds decides whether that is
  possible; when it is not, the error names the authority that makes it so);
- the same inputs and seed give the same plan.

Replicates (METHODOLOGY.md step 4): a channel tested once per candidate gives no
within-candidate replicate, so its pooled within-candidate variance would not exist. In each such
channel, a seeded random subsample of every category gets a second test:
``ceil(share × size)`` candidates, at least ``minimum``, and the whole category when it has
fewer than ``minimum`` candidates (a pool needs the df more than a small category needs the
saving). The draw is one seeded shuffle per category, cut into consecutive slices, one per
channel, so the channels' subsamples are disjoint whenever the category is large enough (no
authority carries all the extra tests) and each is a uniform random subset. A replicated
candidate's two tests fall in the two halves of the period and take consecutive scenarios.
The draw uses its own seeded generator: adding it left the rest of a seed's plan (scenario
offsets, who carries the extra mission) as it was.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

# Planning order of the channels, as the methodology lists them.
CHANNEL_ORDER = ("guichet", "telephone", "courriel", "courrier", "site", "reseaux")


@dataclass(frozen=True)
class PlanCandidate:
    code: str
    category: str


@dataclass(frozen=True)
class PlannedMission:
    authority_code: str
    channel: str
    sequence: int
    scenario_id: int | None
    shopper_id: int | None
    window_start: date
    window_end: date


@dataclass(frozen=True)
class KeptSlots:
    """Missions of a candidate and channel that survive a regeneration (already reported)."""

    counted: int  # how many count towards the channel's quota
    last_sequence: int  # the highest sequence number taken


@dataclass(frozen=True)
class ReplicatePolicy:
    """How many candidates of a category get a second test in a single-test channel."""

    share: float = 0.0
    minimum: int = 0

    def count(self, category_size: int) -> int:
        # The tolerance keeps a float product such as 0.15 × 20 = 3.0000000000000004 at 3.
        wanted = max(self.minimum, math.ceil(self.share * category_size - 1e-9))
        return min(category_size, max(0, wanted))


class PlanningError(ValueError):
    """The plan cannot meet its rules; ``authority_code`` names the authority in the way."""

    def __init__(self, message: str, *, authority_code: str) -> None:
        super().__init__(message)
        self.authority_code = authority_code


def split_windows(opens_at: date, closes_at: date, parts: int) -> list[tuple[date, date]]:
    """``parts`` consecutive windows covering [opens_at, closes_at] as evenly as days allow."""
    if parts <= 0:
        return []
    days = max(1, (closes_at - opens_at).days + 1)
    windows = []
    for index in range(parts):
        start = opens_at + timedelta(days=index * days // parts)
        end = opens_at + timedelta(days=max((index + 1) * days // parts - 1, index * days // parts))
        windows.append((start, end))
    return windows


def _channel_key(channel: str) -> tuple[int, str]:
    return (
        CHANNEL_ORDER.index(channel) if channel in CHANNEL_ORDER else len(CHANNEL_ORDER),
        channel,
    )


def replicate_draw(
    candidates: Sequence[PlanCandidate],
    tests_per_channel: Mapping[str, int],
    policy: ReplicatePolicy,
    *,
    seed: int,
) -> set[tuple[str, str]]:
    """The (authority code, channel) pairs that get a second test (see the module docstring).

    Only channels with exactly one test per candidate take part; the result depends on the
    candidates (not their order), the channels, the policy and the seed.
    """
    single = sorted((ch for ch, n in tests_per_channel.items() if n == 1), key=_channel_key)
    if not single:
        return set()
    by_category: dict[str, list[str]] = {}
    for candidate in candidates:
        by_category.setdefault(candidate.category, []).append(candidate.code)
    drawn: set[tuple[str, str]] = set()
    for category, codes in sorted(by_category.items()):
        members = sorted(set(codes))
        size = len(members)
        count = policy.count(size)
        if count == 0:
            continue
        # A string seed is hashed (sha512) by ``random``: stable across runs and platforms.
        random.Random(f"replicates:{seed}:{category}").shuffle(members)
        for position, channel in enumerate(single):
            start = position * count
            drawn.update((members[(start + i) % size], channel) for i in range(count))
    return drawn


def plan_missions(
    *,
    candidates: Sequence[PlanCandidate],
    tests_per_channel: Mapping[str, int],
    shoppers: Sequence[int],
    conflicts: Mapping[int, Collection[str]],
    scenarios: Mapping[str, Sequence[int]],
    opens_at: date,
    closes_at: date,
    seed: int,
    kept: Mapping[tuple[str, str], KeptSlots] | None = None,
    replicates: ReplicatePolicy | None = None,
) -> list[PlannedMission]:
    """Every mission still to create, with its scenario, window and shopper (None if no shopper).

    ``kept`` lists missions a regeneration leaves in place: they count towards the quota and
    keep their sequence numbers; the ±1 balance applies to the missions planned here.
    ``replicates`` adds the second tests of the single-test channels (none without it).
    """
    kept = kept or {}
    second = replicate_draw(
        candidates, tests_per_channel, replicates or ReplicatePolicy(), seed=seed
    )
    rng = random.Random(seed)
    ordered = sorted(candidates, key=lambda c: (c.category, c.code))
    channels = sorted((ch for ch, n in tests_per_channel.items() if n > 0), key=_channel_key)
    # The rotation starts at a seeded offset per channel, so a new seed shuffles who gets what.
    offsets = {
        channel: rng.randrange(len(scenarios[channel])) if scenarios.get(channel) else 0
        for channel in channels
    }
    slots: list[tuple[str, str, int, int | None, date, date]] = []
    for index, candidate in enumerate(ordered):
        for channel in channels:
            quota = tests_per_channel[channel] + int((candidate.code, channel) in second)
            windows = split_windows(opens_at, closes_at, quota)
            previous = kept.get((candidate.code, channel), KeptSlots(0, 0))
            channel_scenarios = sorted(scenarios.get(channel, ()))
            for number, test in enumerate(range(previous.counted, quota)):
                scenario_id = None
                if channel_scenarios:
                    position = (index + test + offsets[channel]) % len(channel_scenarios)
                    scenario_id = channel_scenarios[position]
                start, end = windows[test]
                sequence = previous.last_sequence + number + 1
                slots.append((candidate.code, channel, sequence, scenario_id, start, end))

    shopper_of = _assign(slots, shoppers=shoppers, conflicts=conflicts, rng=rng)
    return [
        PlannedMission(
            authority_code=code,
            channel=channel,
            sequence=sequence,
            scenario_id=scenario_id,
            shopper_id=shopper_of[position] if shopper_of else None,
            window_start=start,
            window_end=end,
        )
        for position, (code, channel, sequence, scenario_id, start, end) in enumerate(slots)
    ]


def _assign(
    slots: Sequence[tuple[str, str, int, int | None, date, date]],
    *,
    shoppers: Sequence[int],
    conflicts: Mapping[int, Collection[str]],
    rng: random.Random,
) -> list[int]:
    """The shopper of each slot, loads within ±1, no conflicted pair; [] when no shopper."""
    if not shoppers or not slots:
        return []
    people = sorted(set(shoppers))
    rng.shuffle(people)  # who carries the extra mission depends on the seed
    blocked = {shopper: set(conflicts.get(shopper, ())) for shopper in people}
    demand: dict[str, int] = {}
    for code, *_rest in slots:
        demand[code] = demand.get(code, 0) + 1
    codes = list(demand)

    for code in codes:
        if all(code in blocked[shopper] for shopper in people):
            raise PlanningError(
                f"Every shopper declared a conflict with {code}: nobody can test it.",
                authority_code=code,
            )

    # Staff who see one shopper ten times recognise them: look for the smallest cap on how many
    # of an authority's tests one shopper takes that still lets loads balance. Without a cap
    # (the last try) the flow finds a plan whenever one exists, or says which authority blocks.
    largest = max(demand.values())
    for cap in range(1, largest + 1):
        try:
            counts = _balanced_counts(codes, demand, people, blocked, total=len(slots), cap=cap)
            break
        except PlanningError:
            if cap == largest:
                raise

    # Deal each authority's slots among its shoppers in turn, so its tests meet different people.
    remaining = {key: count for key, count in counts.items() if count > 0}
    by_code: dict[str, list[int]] = {}
    for code, shopper in remaining:
        by_code.setdefault(code, []).append(shopper)
    queues = {code: deque(shoppers_of) for code, shoppers_of in by_code.items()}
    assignment: list[int] = []
    for code, *_rest in slots:
        queue = queues[code]
        shopper = queue.popleft()
        remaining[(code, shopper)] -= 1
        if remaining[(code, shopper)] > 0:
            queue.append(shopper)
        assignment.append(shopper)
    return assignment


def _balanced_counts(
    codes: Sequence[str],
    demand: Mapping[str, int],
    people: Sequence[int],
    blocked: Mapping[int, set[str]],
    *,
    total: int,
    cap: int,
) -> dict[tuple[str, int], int]:
    """How many of each authority's tests each shopper takes, loads within ±1, by max flow."""
    base, extra = divmod(total, len(people))
    # Nodes: 0 source, 1 sink, then authorities, then shoppers.
    graph = _FlowGraph(2 + len(codes) + len(people))
    code_node = {code: 2 + i for i, code in enumerate(codes)}
    shopper_node = {shopper: 2 + len(codes) + i for i, shopper in enumerate(people)}
    source_edges = {code: graph.add_edge(0, code_node[code], demand[code]) for code in codes}
    pair_cap = {code: min(cap, demand[code]) for code in codes}
    pair_edges: dict[tuple[str, int], int] = {}
    for code in codes:
        for shopper in people:
            if code not in blocked[shopper]:
                pair_edges[(code, shopper)] = graph.add_edge(
                    code_node[code], shopper_node[shopper], pair_cap[code]
                )
    sink_edges = {shopper: graph.add_edge(shopper_node[shopper], 1, base) for shopper in people}

    # Phase 1 fills every shopper up to the common floor; a path into the sink never takes flow
    # back out of it, so phase 2 (one more each) keeps those floors.
    if graph.max_flow(0, 1) < base * len(people):
        short = [s for s in people if graph.flow(sink_edges[s]) < base]
        shopper = min(short)
        code = min(blocked[shopper] & set(codes), default=min(codes))
        raise PlanningError(
            f"Shopper loads cannot stay within ±1: shopper #{shopper} declared conflicts "
            f"(first: {code}) with too many of the authorities to test.",
            authority_code=code,
        )
    if extra:
        for shopper in people:
            graph.raise_capacity(sink_edges[shopper], base + 1)
        graph.max_flow(0, 1)
    unplaced = [code for code in codes if graph.flow(source_edges[code]) < demand[code]]
    if unplaced:
        code = unplaced[0]
        raise PlanningError(
            f"Shopper loads cannot stay within ±1 around {code}: too many shoppers declared a "
            f"conflict with it.",
            authority_code=code,
        )

    return {key: graph.flow(edge) for key, edge in pair_edges.items()}


class _FlowGraph:
    """Dinic's maximum flow on integer capacities (small, dependency-free)."""

    def __init__(self, size: int) -> None:
        self.to: list[int] = []
        self.capacity: list[int] = []
        self.original: list[int] = []
        self.adjacency: list[list[int]] = [[] for _ in range(size)]
        self.out_edges: list[list[int]] = [[] for _ in range(size)]

    def add_edge(self, source: int, target: int, capacity: int) -> int:
        edge = len(self.to)
        self.to += [target, source]
        self.capacity += [capacity, 0]
        self.original += [capacity, 0]
        self.adjacency[source].append(edge)
        self.adjacency[target].append(edge + 1)
        self.out_edges[source].append(edge)
        return edge

    def flow(self, edge: int) -> int:
        return self.original[edge] - self.capacity[edge]

    def raise_capacity(self, edge: int, capacity: int) -> None:
        self.capacity[edge] += capacity - self.original[edge]
        self.original[edge] = capacity

    def max_flow(self, source: int, sink: int) -> int:
        while True:
            level = [-1] * len(self.adjacency)
            level[source] = 0
            queue = deque([source])
            while queue:
                node = queue.popleft()
                for edge in self.adjacency[node]:
                    if self.capacity[edge] > 0 and level[self.to[edge]] < 0:
                        level[self.to[edge]] = level[node] + 1
                        queue.append(self.to[edge])
            if level[sink] < 0:
                return self._total(source)
            cursor = [0] * len(self.adjacency)
            while True:
                if not self._push(source, sink, 1 << 60, level, cursor):
                    break

    def _total(self, source: int) -> int:
        return sum(self.flow(edge) for edge in self.out_edges[source])

    def _push(self, node: int, sink: int, limit: int, level: list[int], cursor: list[int]) -> int:
        if node == sink:
            return limit
        edges = self.adjacency[node]
        while cursor[node] < len(edges):
            edge = edges[cursor[node]]
            target = self.to[edge]
            if self.capacity[edge] > 0 and level[target] == level[node] + 1:
                pushed = self._push(target, sink, min(limit, self.capacity[edge]), level, cursor)
                if pushed:
                    self.capacity[edge] -= pushed
                    self.capacity[edge ^ 1] += pushed
                    return pushed
            cursor[node] += 1
        return 0
