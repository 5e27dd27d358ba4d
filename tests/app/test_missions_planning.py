"""Mission planning invariants, checked on random inputs (hypothesis)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.campaigns.schemas import DEFAULT_TESTS_PER_CHANNEL
from app.missions.planning import (
    KeptSlots,
    PlanCandidate,
    PlanningError,
    ReplicatePolicy,
    plan_missions,
    replicate_draw,
    split_windows,
)

DEFAULT_COUNTS = {channel.value: count for channel, count in DEFAULT_TESTS_PER_CHANNEL.items()}
OPENS = date(2030, 1, 15)
CLOSES = date(2030, 10, 31)


@st.composite
def plans(draw: st.DrawFn) -> dict:
    codes = draw(
        st.lists(st.from_regex(r"[0-9]{5}", fullmatch=True), min_size=1, max_size=12, unique=True)
    )
    candidates = [PlanCandidate(code, draw(st.sampled_from(["a", "b"]))) for code in codes]
    counts = draw(
        st.one_of(
            st.just(DEFAULT_COUNTS),
            st.dictionaries(st.sampled_from(list(DEFAULT_COUNTS)), st.integers(0, 4), min_size=1),
        )
    )
    shoppers = draw(st.lists(st.integers(1, 500), min_size=0, max_size=7, unique=True))
    # Few conflicts per shopper, so that a balanced plan usually exists.
    conflicts = {
        shopper: set(draw(st.lists(st.sampled_from(codes), max_size=max(0, len(codes) // 4))))
        for shopper in shoppers
    }
    scenarios = {
        channel: list(range(100 * i, 100 * i + draw(st.integers(0, 3))))
        for i, channel in enumerate(DEFAULT_COUNTS, start=1)
    }
    opens = draw(st.dates(date(2030, 1, 1), date(2030, 12, 1)))
    closes = opens + timedelta(days=draw(st.integers(1, 300)))
    return {
        "candidates": candidates,
        "tests_per_channel": counts,
        "shoppers": shoppers,
        "conflicts": conflicts,
        "scenarios": scenarios,
        "opens_at": opens,
        "closes_at": closes,
        "seed": draw(st.integers(0, 2**32 - 1)),
        "replicates": draw(
            st.builds(
                ReplicatePolicy,
                share=st.sampled_from([0.0, 0.15, 0.5, 1.0]),
                minimum=st.integers(0, 4),
            )
        ),
    }


def _plan_or_skip(plan: dict):
    try:
        return plan_missions(**plan)
    except PlanningError as error:
        # Refusal is allowed only when it names an authority of the plan.
        assert error.authority_code in {c.code for c in plan["candidates"]}
        assert error.authority_code in str(error)
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_generated_missions_meet_counts_conflicts_and_balance(plan: dict) -> None:
    missions = _plan_or_skip(plan)
    if missions is None:
        return
    per_slot = Counter((m.authority_code, m.channel) for m in missions)
    sizes = Counter(c.category for c in plan["candidates"])
    for channel, count in plan["tests_per_channel"].items():
        for category, size in sizes.items():
            members = [c.code for c in plan["candidates"] if c.category == category]
            tests = Counter(per_slot[(code, channel)] for code in members)
            if count == 1:  # a single-test channel: the policy's share get a second test
                replicated = plan["replicates"].count(size)
                assert tests == Counter({2: replicated, 1: size - replicated}) - Counter()
            else:
                assert tests == Counter({count: size}) - Counter()
    assert len({(m.authority_code, m.channel, m.sequence) for m in missions}) == len(missions)
    for mission in missions:
        assert mission.window_start <= mission.window_end
        assert plan["opens_at"] <= mission.window_start
        assert mission.window_end <= max(plan["closes_at"], plan["opens_at"])
        if plan["shoppers"]:
            assert mission.shopper_id in plan["shoppers"]
            assert mission.authority_code not in plan["conflicts"][mission.shopper_id]
        else:
            assert mission.shopper_id is None
        available = plan["scenarios"].get(mission.channel, [])
        assert (mission.scenario_id in available) if available else mission.scenario_id is None
    if plan["shoppers"] and missions:
        loads = Counter(m.shopper_id for m in missions)
        every = [loads.get(shopper, 0) for shopper in plan["shoppers"]]
        assert max(every) - min(every) <= 1


@settings(max_examples=100, deadline=None)
@given(plans())
def test_consecutive_candidates_get_different_scenarios(plan: dict) -> None:
    plan["shoppers"] = []
    missions = plan_missions(**plan)
    ordered = sorted({(c.category, c.code) for c in plan["candidates"]})
    scenario_of = {(m.authority_code, m.channel, m.sequence): m.scenario_id for m in missions}
    for channel, available in plan["scenarios"].items():
        if len(available) < 2:
            continue
        for (_c1, first), (_c2, second) in pairwise(ordered):
            for sequence in range(1, plan["tests_per_channel"].get(channel, 0) + 1):
                assert (
                    scenario_of[(first, channel, sequence)]
                    != scenario_of[(second, channel, sequence)]
                )


@settings(max_examples=50, deadline=None)
@given(plans())
def test_same_seed_same_plan(plan: dict) -> None:
    first = _plan_or_skip(plan)
    reordered = dict(plan, candidates=list(reversed(plan["candidates"])))
    reordered["shoppers"] = list(reversed(plan["shoppers"]))
    assert first == _plan_or_skip(reordered)


def test_conflicts_that_forbid_balance_name_the_authority() -> None:
    candidates = [PlanCandidate("01001", "a"), PlanCandidate("01004", "a")]
    with pytest.raises(PlanningError) as error:
        plan_missions(
            candidates=candidates,
            tests_per_channel={"guichet": 2},
            shoppers=[1, 2],
            conflicts={1: {"01001", "01004"}},
            scenarios={},
            opens_at=OPENS,
            closes_at=CLOSES,
            seed=1,
        )
    assert error.value.authority_code in {"01001", "01004"}

    with pytest.raises(PlanningError) as error:
        plan_missions(
            candidates=candidates,
            tests_per_channel={"guichet": 2},
            shoppers=[1, 2],
            conflicts={1: {"01004"}, 2: {"01004"}},
            scenarios={},
            opens_at=OPENS,
            closes_at=CLOSES,
            seed=1,
        )
    assert error.value.authority_code == "01004"
    assert "01004" in str(error.value)


def test_a_feasible_but_tight_plan_is_found() -> None:
    # Shopper 1 may test only 01001: the flow must route everything else to shopper 2.
    candidates = [PlanCandidate("01001", "a"), PlanCandidate("01004", "a")]
    missions = plan_missions(
        candidates=candidates,
        tests_per_channel={"telephone": 3},
        shoppers=[1, 2],
        conflicts={1: {"01004"}},
        scenarios={},
        opens_at=OPENS,
        closes_at=CLOSES,
        seed=7,
    )
    loads = Counter(m.shopper_id for m in missions)
    assert loads == {1: 3, 2: 3}
    assert all(m.shopper_id == 2 for m in missions if m.authority_code == "01004")


def test_default_counts_and_windows_spread_over_the_period() -> None:
    missions = plan_missions(
        candidates=[PlanCandidate("01001", "a")],
        tests_per_channel=DEFAULT_COUNTS,
        shoppers=[],
        conflicts={},
        scenarios={},
        opens_at=OPENS,
        closes_at=CLOSES,
        seed=1,
    )
    assert Counter(m.channel for m in missions) == DEFAULT_COUNTS
    calls = sorted((m for m in missions if m.channel == "telephone"), key=lambda m: m.sequence)
    assert [(m.window_start, m.window_end) for m in calls] == split_windows(OPENS, CLOSES, 3)
    assert calls[0].window_start == OPENS and calls[-1].window_end == CLOSES
    assert calls[0].window_end < calls[1].window_start


def test_kept_missions_count_and_keep_their_numbers() -> None:
    missions = plan_missions(
        candidates=[PlanCandidate("01001", "a")],
        tests_per_channel={"telephone": 3},
        shoppers=[1],
        conflicts={},
        scenarios={},
        opens_at=OPENS,
        closes_at=CLOSES,
        seed=1,
        kept={("01001", "telephone"): KeptSlots(counted=1, last_sequence=2)},
    )
    assert [m.sequence for m in missions] == [3, 4]


def test_an_authoritys_tests_are_split_between_shoppers() -> None:
    missions = plan_missions(
        candidates=[PlanCandidate(code, "a") for code in ("01001", "01004", "69123")],
        tests_per_channel=DEFAULT_COUNTS,
        shoppers=[1, 2, 3],
        conflicts={},
        scenarios={},
        opens_at=OPENS,
        closes_at=CLOSES,
        seed=5,
    )
    per_pair = Counter((m.authority_code, m.shopper_id) for m in missions)
    # 10 tests per authority, 3 shoppers: nobody does more than 4 of one authority's tests.
    assert max(per_pair.values()) == 4


def _category(prefix: str, size: int, category: str) -> list[PlanCandidate]:
    return [PlanCandidate(f"{prefix}{i:03d}", category) for i in range(size)]


DEFAULT_REPLICATES = ReplicatePolicy(share=0.15, minimum=10)
SINGLE_TEST_CHANNELS = ("courrier", "site", "reseaux")


@pytest.mark.parametrize(
    "size, expected",
    [(4, 4), (10, 10), (35, 10), (66, 10), (67, 11), (100, 15), (250, 38), (20, 10)],
)
def test_replicate_count_takes_the_share_with_a_floor_and_the_whole_small_category(
    size: int, expected: int
) -> None:
    assert DEFAULT_REPLICATES.count(size) == expected
    # 0.15 × 20 is 3.0000000000000004 in floating point: still 3, not 4.
    assert ReplicatePolicy(share=0.15, minimum=0).count(20) == 3
    assert ReplicatePolicy().count(size) == 0


def test_single_test_channels_get_a_second_test_on_a_share_of_each_category() -> None:
    candidates = [
        *_category("A", 35, "small"),
        *_category("B", 250, "large"),
        *_category("C", 4, "tiny"),
    ]
    missions = plan_missions(
        candidates=candidates,
        tests_per_channel=DEFAULT_COUNTS,
        shoppers=list(range(1, 13)),
        conflicts={},
        scenarios={"courrier": [1, 2, 3], "site": [4, 5]},
        opens_at=OPENS,
        closes_at=CLOSES,
        seed=11,
        replicates=DEFAULT_REPLICATES,
    )
    category_of = {c.code: c.category for c in candidates}
    per_slot = Counter((m.authority_code, m.channel) for m in missions)
    replicated: dict[str, dict[str, set[str]]] = {}
    for (code, channel), count in per_slot.items():
        if count == 2 and channel in SINGLE_TEST_CHANNELS:
            replicated.setdefault(channel, {}).setdefault(category_of[code], set()).add(code)
        else:
            assert count == DEFAULT_COUNTS[channel]
    for channel in SINGLE_TEST_CHANNELS:
        drawn = replicated[channel]
        assert {category: len(codes) for category, codes in drawn.items()} == {
            "small": 10,  # the minimum (15 % of 35 is 6)
            "large": 38,  # 15 % of 250, rounded up
            "tiny": 4,  # fewer candidates than the minimum: all of them
        }
    # Different candidates per channel: disjoint slices where the category allows (3 × 38 ≤ 250),
    # and in the 35-candidate category (3 × 10 ≤ 35) too.
    for category in ("small", "large"):
        sets = [replicated[channel][category] for channel in SINGLE_TEST_CHANNELS]
        assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    # The second test comes in a later window than the first, with the next scenario.
    by_slot = {(m.authority_code, m.channel, m.sequence): m for m in missions}
    for channel in SINGLE_TEST_CHANNELS:
        for codes in replicated[channel].values():
            for code in codes:
                first, second = by_slot[(code, channel, 1)], by_slot[(code, channel, 2)]
                assert (first.window_start, first.window_end) == split_windows(OPENS, CLOSES, 2)[0]
                assert first.window_end < second.window_start
                assert second.window_end == CLOSES
                if channel != "reseaux":
                    assert first.scenario_id != second.scenario_id
    # A candidate tested once keeps the whole period; loads stay within ±1.
    single = next(m for m in missions if per_slot[(m.authority_code, m.channel)] == 1)
    assert (single.window_start, single.window_end) == (OPENS, CLOSES)
    loads = Counter(m.shopper_id for m in missions).values()
    assert max(loads) - min(loads) <= 1


def test_the_replicate_draw_is_seeded_and_ignores_the_candidates_order() -> None:
    candidates = _category("A", 120, "a")
    draw = replicate_draw(candidates, DEFAULT_COUNTS, DEFAULT_REPLICATES, seed=3)
    assert len(draw) == 3 * 18
    assert {channel for _code, channel in draw} == set(SINGLE_TEST_CHANNELS)
    assert replicate_draw(
        list(reversed(candidates)), DEFAULT_COUNTS, DEFAULT_REPLICATES, seed=3
    ) == (draw)
    other = replicate_draw(candidates, DEFAULT_COUNTS, DEFAULT_REPLICATES, seed=4)
    assert other != draw and len(other) == len(draw)
    # Channels with several tests per candidate, or none, take no replicate.
    assert not replicate_draw(candidates, {"guichet": 2, "site": 0}, DEFAULT_REPLICATES, seed=3)
    # Over many seeds each candidate is drawn about equally often (a uniform subsample).
    hits = Counter(
        code
        for seed in range(300)
        for code, channel in replicate_draw(candidates, {"site": 1}, DEFAULT_REPLICATES, seed=seed)
    )
    expected = 300 * 18 / 120  # 45
    assert min(hits[c.code] for c in candidates) > expected / 2
    assert max(hits.values()) < expected * 2


def test_a_regeneration_keeps_reported_replicates_and_completes_the_others() -> None:
    candidates = _category("A", 12, "a")
    plan = {
        "candidates": candidates,
        "tests_per_channel": {"site": 1},
        "shoppers": [1, 2],
        "conflicts": {},
        "scenarios": {},
        "opens_at": OPENS,
        "closes_at": CLOSES,
        "seed": 8,
        "replicates": DEFAULT_REPLICATES,
    }
    first = plan_missions(**plan)
    replicated = sorted(m.authority_code for m in first if m.sequence == 2)
    assert len(replicated) == 10
    # One replicated candidate reported both tests, another only its first.
    done, half = replicated[0], replicated[1]
    kept = {(done, "site"): KeptSlots(2, 2), (half, "site"): KeptSlots(1, 1)}
    again = plan_missions(**plan, kept=kept)
    sequences = Counter((m.authority_code, m.sequence) for m in again)
    assert not [key for key in sequences if key[0] == done]
    assert sequences[(half, 2)] == 1 and (half, 1) not in sequences
    assert len(again) == len(first) - 3
    loads = Counter(m.shopper_id for m in again).values()
    assert max(loads) - min(loads) <= 1
