# ruff: noqa
# mypy: ignore-errors
"""Study (not a test): coverage of candidate channel-variance rules on the app coverage design.

Run: uv run python tests/scoring/coverage_rules_study.py   (about 10 s)
Prints channel k=1..4 and mystery-component coverage, top/bottom fifth, for each rule,
including ``channel_scores``' own rules ("two_part", the default, and "quasi_binomial").

Run: uv run python tests/scoring/coverage_rules_study.py --power [RUNS]   (RUNS editions, 40)
Compares the instruments of the two-part rule's power p (the channel's level predicted from
the authority's other channels, the default, against the raw mean of the other channels) and
fixed powers: the spread of p across editions and the channel cells of each.

Run: uv run python tests/scoring/coverage_rules_study.py --compute RUNS [FIRST_RUN]
Measures every cell of the strict test through ``app.results.compute`` (the test's own
``measure``) on RUNS editions of 8 categories, with Monte-Carlo SEs (about 2 s per edition;
the default's figures in ``channel_scores``' Notes pool two processes of 100 editions,
first runs 1000 and 2000).
"""

import numpy as np
from scipy import stats
from scipy.special import expit

from tests.app.test_results_coverage import CATEGORY_SIZE, CHANNEL_LEVEL, DESIGN, REPLICATED
from tests.scoring.test_scoring_mystery_pool import (
    _GH_NODES,
    _GH_WEIGHTS,
    ITEM_DIFFICULTY,
    VISIT_SHOCK,
    knock_out_rate,
    simulate_visit_scores,
    true_channel_score,
)


def true_var(q):
    p = expit(q[:, None, None] + VISIT_SHOCK * _GH_NODES[:, None] - ITEM_DIFFICULTY)
    m = 100 * p.mean(-1)
    v = 100**2 * (p * (1 - p)).sum(-1) / 72
    EX = m @ _GH_WEIGHTS
    EX2 = (v + m**2) @ _GH_WEIGHTS
    r = knock_out_rate(q)
    mu = (1 - r) * EX
    return (1 - r) * EX2 - mu**2


def simulate(seed, runs=12, cats=8):
    rng = np.random.default_rng(seed)
    out = []
    for run in range(runs):
        n = cats * CATEGORY_SIZE
        a = rng.normal(0, 0.9, n)
        for ch, base in CHANNEL_LEVEL.items():
            q = base + a + rng.normal(0, 0.5, n)
            visits = np.full(n, DESIGN[ch])
            for s in range(0, n, CATEGORY_SIZE):
                if DESIGN[ch] == 1:
                    chosen = rng.choice(CATEGORY_SIZE, REPLICATED, replace=False)
                elif ch == "telephone":
                    chosen = rng.choice(CATEGORY_SIZE, CATEGORY_SIZE // 3, replace=False)
                else:
                    continue
                visits[s + chosen] += 1
            score, owner = simulate_visit_scores(rng, q, visits)
            out.append(
                dict(
                    run=run,
                    ch=ch,
                    q=q,
                    visits=visits,
                    score=score,
                    owner=owner,
                    cat=np.arange(n) // CATEGORY_SIZE + 100 * run,
                )
            )
    return out


def fifths(truth, hit, group):
    res = {"top": [], "bottom": []}
    for g in np.unique(group):
        m = np.flatnonzero(group == g)
        o = m[np.argsort(truth[m], kind="stable")]
        f = max(1, len(o) // 5)
        res["bottom"] += list(hit[o[:f]])
        res["top"] += list(hit[o[-f:]])
    return {k: 100 * np.mean(v) for k, v in res.items()}, len(res["top"])


def evaluate(data, rule, **kw):
    for d in data:
        pass
    # gather per (run) all channels in one call like compute does
    rows = []
    for run in sorted({d["run"] for d in data}):
        ds = [d for d in data if d["run"] == run]
        score = np.concatenate([d["score"] for d in ds])
        owner = np.concatenate([d["owner"] for d in ds])
        ch = np.concatenate([np.full(len(d["owner"]), d["ch"], dtype=object) for d in ds])
        cat = np.concatenate([d["cat"][d["owner"]] for d in ds])
        r = rule(score, owner, ch, cat, **kw)
        auth = np.asarray(r.domains.get_level_values(0))
        lab = np.asarray(r.domains.get_level_values(1))
        for d in ds:
            sel = lab == d["ch"]
            a = auth[sel]
            t = true_channel_score(d["q"])[a]
            tv = true_var(d["q"])[a]
            k = d["visits"][a]
            lo, hi = np.clip(r.ci_low[sel], 0, 100), np.clip(r.ci_high[sel], 0, 100)
            est = r.estimate[sel]
            hit = (lo <= t) & (t <= hi)
            z = 1.959964
            ohit = (est - z * np.sqrt(tv / k) <= t) & (t <= est + z * np.sqrt(tv / k))
            rows.append(
                dict(
                    k=k,
                    t=t,
                    hit=hit,
                    ohit=ohit,
                    se2=r.se[sel] ** 2,
                    tv=tv / k,
                    g=np.array([f"{run}/{c}/{d['ch']}/" for c in d["cat"][a]], dtype=object),
                )
            )
    out = {}
    for kk in (1, 2, 3, 4):
        sel = [(r_["k"] == kk) for r_ in rows]
        t = np.concatenate([r_["t"][s] for r_, s in zip(rows, sel, strict=False)])
        h = np.concatenate([r_["hit"][s] for r_, s in zip(rows, sel, strict=False)])
        oh = np.concatenate([r_["ohit"][s] for r_, s in zip(rows, sel, strict=False)])
        se2 = np.concatenate([r_["se2"][s] for r_, s in zip(rows, sel, strict=False)])
        tv = np.concatenate([r_["tv"][s] for r_, s in zip(rows, sel, strict=False)])
        g = np.concatenate([r_["g"][s] for r_, s in zip(rows, sel, strict=False)])
        cov, n = fifths(t, h, g)
        ocov, _ = fifths(t, oh, g)
        ratio_top, _ = fifths(t, se2 / tv, g)
        out[kk] = (cov, ocov, ratio_top, n)
    return out


from scoring.mystery import _dispersion, _variance_level

W = {"guichet": 25, "telephone": 25, "courriel": 20, "site": 15, "courrier": 10, "reseaux": 5}
TOT = sum(W.values())


def prep(data):
    units = []
    for d in data:
        n = len(d["q"])
        k = d["visits"].astype(float)
        mean = np.bincount(d["owner"], d["score"], n) / k
        ss = np.bincount(d["owner"], (d["score"] - mean[d["owner"]]) ** 2, n)
        cat = d["cat"]
        phi = np.zeros(n)
        s2 = np.zeros(n)
        df = np.zeros(n)
        pool = np.unique(cat, return_inverse=True)[1]
        npool = pool.max() + 1
        for p in range(npool):
            m = pool == p
            phi[m] = _dispersion(ss[m], k[m], mean[m])
            df[m] = (k[m] - 1).sum()
            s2[m] = ss[m].sum() / df[m]
        units.append(
            dict(
                d,
                k=k,
                mean=mean,
                ss=ss,
                phi=phi,
                s2=s2,
                df=df,
                pool=pool,
                npool=npool,
                truth=true_channel_score(d["q"]),
                tv=true_var(d["q"]) / k,
            )
        )
    return units


def run(units, rule, label):
    chan = {kk: ([], [], []) for kk in (1, 2, 3, 4)}
    comp = {}
    for u in units:
        out = rule(u)
        se, lo, hi = out[:3]
        dfu = out[3] if len(out) > 3 else u["df"]
        hit = (np.clip(lo, 0, 100) <= u["truth"]) & (u["truth"] <= np.clip(hi, 0, 100))
        g = np.array([f"{u['run']}/{c}/{u['ch']}" for c in u["cat"]], dtype=object)
        for kk in chan:
            s = u["k"] == kk
            chan[kk][0].append(u["truth"][s])
            chan[kk][1].append(hit[s])
            chan[kk][2].append(g[s])
        c = comp.setdefault(u["run"], dict(est=0, var=0, ws=0, truth=0, tvar=0, cat=u["cat"]))
        w = W[u["ch"]] / TOT
        c["est"] = c["est"] + w * u["mean"]
        c["var"] = c["var"] + w**2 * se**2
        c["ws"] = c["ws"] + (w**2 * se**2) ** 2 / dfu
        c["truth"] = c["truth"] + w * u["truth"]
        c["tvar"] = c["tvar"] + w**2 * u["tv"]
    line = f"{label:28s}"
    for kk, (t, h, g) in chan.items():
        cov, n = fifths(np.concatenate(t), np.concatenate(h), np.concatenate(g))
        line += f" k{kk} {cov['top']:5.1f}/{cov['bottom']:5.1f}"
    T, H, G, OH = [], [], [], []
    for r, c in comp.items():
        df = c["var"] ** 2 / c["ws"]
        q = stats.t.ppf(0.975, df)
        se = np.sqrt(c["var"])
        T.append(c["truth"])
        H.append(np.abs(c["est"] - c["truth"]) <= q * se)
        OH.append(np.abs(c["est"] - c["truth"]) <= 1.96 * np.sqrt(c["tvar"]))
        G.append(c["cat"] + 1000 * r)
    cov, _n = fifths(np.concatenate(T), np.concatenate(H), np.concatenate(G))
    line += f" | comp {cov['top']:5.1f}/{cov['bottom']:5.1f}"
    print(line, flush=True)
    return cov


def tq(u):
    return stats.t.ppf(0.975, u["df"])


def sym(u, var):
    se = np.sqrt(var / u["k"])
    q = tq(u)
    return se, u["mean"] - q * se, u["mean"] + q * se


def r_oracle(u):
    se = np.sqrt(u["tv"])
    return se, u["mean"] - 1.96 * se, u["mean"] + 1.96 * se


def r_const(u):
    return sym(u, u["s2"])


def r_qb_shrunk(u):
    mu = _variance_level(
        u["mean"],
        u["k"],
        u["pool"],
        u["npool"],
        u["s2"][np.unique(u["pool"], return_index=True)[1]],
    )
    return sym(u, u["phi"] * mu * (100 - mu))


def r_qb_own(u):
    mu = u["mean"]
    return sym(u, u["phi"] * mu * (100 - mu) * u["k"] / (u["k"] - u["phi"]))


def wilson(u, phi_scale=1.0):
    k, y, phi = u["k"], u["mean"] / 100, u["phi"] * phi_scale
    q = tq(u)
    c = q**2 * phi / k
    centre = (y + c / 2) / (1 + c)
    half = np.sqrt(c * y * (1 - y) + c**2 / 4) / (1 + c)
    lo, hi = 100 * (centre - half), 100 * (centre + half)
    return lo, hi, 100 * centre


def r_wilson(u):
    lo, hi, centre = wilson(u)
    # SE for the component: variance at the Wilson centre
    se = np.sqrt(u["phi"] * centre * (100 - centre) / u["k"])
    return se, lo, hi


def r_wilson_se_half(u):
    lo, hi, _centre = wilson(u)
    return (hi - lo) / 2 / tq(u), lo, hi


def r_ac(u, c0=None):
    q = tq(u)
    c = q**2 * u["phi"] if c0 is None else c0
    mu = (u["k"] * u["mean"] + c * 50) / (u["k"] + c)
    return sym(u, u["phi"] * mu * (100 - mu))


def level_eb(u):
    return _variance_level(
        u["mean"],
        u["k"],
        u["pool"],
        u["npool"],
        u["s2"][np.unique(u["pool"], return_index=True)[1]],
    )


def pool_mean(u):
    return np.bincount(u["pool"], u["mean"])[u["pool"]] / np.bincount(u["pool"])[u["pool"]]


def make_mod(d0, level="eb"):
    def rule(u):
        mu = {"eb": level_eb, "wilson": lambda u: wilson(u)[2], "pool": pool_mean}[level](u)
        v0 = u["phi"] * mu * (100 - mu)
        var = (d0 * v0 + u["ss"]) / (d0 + u["k"] - 1)
        df = d0 + u["k"] - 1
        se = np.sqrt(var / u["k"])
        q = stats.t.ppf(0.975, df)
        return se, u["mean"] - q * se, u["mean"] + q * se, df

    return rule


def mod_wilson(u, d0, dfmode="harm"):
    k, y, phi, ss = u["k"], u["mean"], u["phi"], u["ss"]
    own = k - 1
    a = d0 * phi / (d0 + own)
    b = ss / (d0 + own)
    df = d0 + own if dfmode == "d0" else 1 / (1 / (d0 + own) + 1 / u["df"])
    df = np.where(own > 0, df, u["df"]) if dfmode != "d0" else df
    a = np.where(own > 0, a, phi)
    b = np.where(own > 0, b, 0.0)
    q2 = stats.t.ppf(0.975, df) ** 2 / k
    # (y-mu)^2 <= q2 (a mu (100-mu) + b)  ->  (1+q2 a) mu^2 - (2y + 100 q2 a) mu + y^2 - q2 b <= 0
    A = 1 + q2 * a
    B = -(2 * y + 100 * q2 * a)
    C = y**2 - q2 * b
    disc = np.sqrt(np.maximum(B**2 - 4 * A * C, 0))
    lo, hi = (-B - disc) / (2 * A), (-B + disc) / (2 * A)
    return lo, hi, df


def make_j2(toward="50", cmult=1.0, jeff_post=False):
    def rule(u):
        lo, hi, _wc = wilson(u)
        k, phi = u["k"], u["phi"]
        c = cmult * phi
        m = 50.0 if toward == "50" else pool_mean(u)
        mu = (k * u["mean"] + c * m) / (k + c)
        if jeff_post:
            n = k / phi
            n * mu / 100 * (k + c) / k
            V = (
                phi
                * 1e4
                * (n * u["mean"] / 100 + 0.5)
                * (n * (1 - u["mean"] / 100) + 0.5)
                / ((n + 1) * (n + 2))
                / k
            )
        else:
            V = phi * mu * (100 - mu) / (k - phi)
        g = phi * (100 - 2 * mu) / (k - phi) * k / (k + c)
        varV = g**2 * V * (k - phi) / k + 2 * V**2 / u["df"]
        df = 2 * V**2 / varV
        return np.sqrt(V), lo, hi, df

    return rule


def channel_rule(model):
    """One of channel_scores' rules, all channels of an edition in one call (as compute)."""
    from scoring import channel_scores

    cache = {}

    def rule(u):
        if id(u) not in cache:
            us = [v for v in UNITS if v["run"] == u["run"]]
            score = np.concatenate([v["score"] for v in us])
            owner = np.concatenate([v["owner"] for v in us])
            ch = np.concatenate([np.full(len(v["owner"]), v["ch"], dtype=object) for v in us])
            cat = np.concatenate([v["cat"][v["owner"]] for v in us])
            res = channel_scores(
                score, owner, ch, cat, knocked_out=score == 0, variance_model=model, min_pool_df=5
            )
            a = np.asarray(res.domains.get_level_values(0)).astype(int)
            lab = np.asarray(res.domains.get_level_values(1))
            for v in us:
                sel = lab == v["ch"]
                out = [np.empty(len(v["q"])) for _ in range(4)]
                for o, x in zip(out, (res.se, res.ci_low, res.ci_high, res.df), strict=True):
                    o[a[sel]] = x[sel]
                cache[id(v)] = out
        return cache[id(u)]

    return rule


def compute_study(runs, first_run):
    from tests.app.test_results_coverage import measure

    hits, ranks = measure(runs, first_run=first_run)
    for (name, fifth), values in sorted(hits.items()):
        p = np.mean(values)
        se = np.sqrt(p * (1 - p) / len(values))
        print(f"{name:20s} {fifth:6s} {100 * p:5.1f} ± {100 * se:.1f}  (n = {len(values)})")
    print(
        f"simultaneous rank sets cover all true ranks: {100 * np.mean(ranks):.1f} % of {len(ranks)}"
    )


def raw_instrument(mean, others, pair_chan, n_chan):
    """The power's former instrument: v at the raw mean of the authority's other channels."""
    return others * (100 - others)


def power_study(runs):
    """p per edition and channel cells: predicted-level instrument, raw mean, fixed powers."""
    import scoring.mystery as mystery

    units = prep(simulate(20250612, runs=runs))
    UNITS[:] = units
    estimated, predicted = mystery._power, mystery._level_proxy
    for label, power, proxy in [
        ("predicted level (default)", None, predicted),
        ("raw mean of other channels", None, raw_instrument),
        *[(f"fixed p = {p}", p, predicted) for p in (1.0, 1.15, 1.25, 1.3)],
    ]:
        seen = []

        def record(*args, power=power):
            value = estimated(*args) if power is None else power
            seen.append(value)
            return value

        mystery._power, mystery._level_proxy = record, proxy
        try:
            run(units, channel_rule("two_part"), label)
        finally:
            mystery._power, mystery._level_proxy = estimated, predicted
        if power is None:
            seen = np.asarray(seen)
            print(
                f"    p over {len(seen)} editions: mean {seen.mean():.3f}, SD {seen.std():.3f}, "
                f"range {seen.min():.2f}-{seen.max():.2f}"
            )


UNITS = []

if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "--compute":
        compute_study(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0)
        raise SystemExit
    if len(sys.argv) > 1 and sys.argv[1] == "--power":
        power_study(int(sys.argv[2]) if len(sys.argv) > 2 else 40)
        raise SystemExit
    units = prep(simulate(20250612))
    UNITS[:] = units
    for name, rule in [
        ("oracle (true variance)", r_oracle),
        ("constant pool", r_const),
        ("quasi-binomial, EB level (current)", r_qb_shrunk),
        ("qb at own mean, unbiased", r_qb_own),
        ("Wilson, se at centre", r_wilson),
        ("Wilson + Jeffreys-level se, Satt. df", make_j2("50", 1.0)),
        ("Wilson + pool-pseudo-count se", make_j2("pool", 1.0)),
        ("channel_scores quasi_binomial", channel_rule("quasi_binomial")),
        ("channel_scores two_part", channel_rule("two_part")),
    ]:
        run(units, rule, name)
