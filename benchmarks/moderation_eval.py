"""Prompt moderation on tenku's labelled set: recall and false positives per category, per layer.

    python benchmarks/moderation_eval.py                 # the held-out split (never tuned on)
    python benchmarks/moderation_eval.py --split train   # the split the rules and the classifier learned from
    python benchmarks/moderation_eval.py --train         # retrain tenku's classifier on the train split

For each split: recall of the harmful prompts and false-positive rate of the benign ones, per
category (a benign prompt counts under the category it is close to), for the full moderation and for
each layer alone (rules, tenku's classifier, alt-profanity-check); the refusal rate of every harmful
prompt under each obfuscation of :mod:`tenku.safety.obfuscate`; and the latency of a refusal (a fresh
process: import + first refusal, then warm refusals) and of an allowed prompt.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "moderation"
sys.path.insert(0, str(ROOT / "src"))

from tenku.safety import moderation_classifier as clf  # noqa: E402
from tenku.safety import obfuscate  # noqa: E402
from tenku.safety.moderation import ModerationConfig, check_prompt, check_rules, top_category  # noqa: E402


def near(label: str) -> str:
    return label.split("/", 1)[1] if label.startswith("benign/") else label


def evaluate(rows, decide) -> dict:
    """Per-category recall (harmful) and false-positive rate (benign, by the category it is close to)."""
    per: dict[str, dict] = {}
    misses, false_pos, wrong_cat = [], [], []
    for lang, label, text in rows:
        benign = label.startswith("benign")
        cat = near(label) if benign else top_category(label)
        refused, got = decide(text)
        d = per.setdefault(cat, {"harmful": 0, "caught": 0, "benign": 0, "false_pos": 0})
        if benign:
            d["benign"] += 1
            d["false_pos"] += int(refused)
            if refused:
                false_pos.append((text, got))
        else:
            d["harmful"] += 1
            d["caught"] += int(refused)
            if not refused:
                misses.append((label, text))
            elif got is not None and top_category(got) != top_category(label):
                wrong_cat.append((label, got, text))
    H = sum(d["harmful"] for d in per.values())
    B = sum(d["benign"] for d in per.values())
    return {"per_category": per, "recall": sum(d["caught"] for d in per.values()) / max(H, 1),
            "fp_rate": sum(d["false_pos"] for d in per.values()) / max(B, 1), "harmful": H, "benign": B,
            "misses": misses, "false_positives": false_pos, "other_category": wrong_cat}


def layer_deciders():
    cfg_rules = ModerationConfig(classifier=False)
    out = {"all layers": lambda t: _res(check_prompt(t, ModerationConfig())),
           "rules": lambda t: _res(check_rules(t, cfg_rules))}
    if clf.own_model() is not None:
        out["tenku classifier"] = lambda t: _res(clf.own_layer(t))
    if clf.available()["alt-profanity-check"]:
        out["alt-profanity-check"] = lambda t: _res(clf.profanity_layer(t))
    return out


def _res(r):
    if r is None or r.allowed:
        return False, None
    return True, r.category


def obfuscation_rates(rows) -> dict:
    harmful = [t for _, label, t in rows if not label.startswith("benign")]
    rates = {}
    for name in obfuscate.all_variants("x"):
        missed = [t for t in harmful if check_prompt(obfuscate.all_variants(t)[name], ModerationConfig()).allowed]
        rates[name] = {"refused": len(harmful) - len(missed), "of": len(harmful), "missed": missed}
    return rates


_LATENCY = r"""
import json, statistics, sys, time
t0 = time.perf_counter()
from tenku.safety.moderation import ModerationConfig, check_prompt
t1 = time.perf_counter()
prompts = json.loads(sys.argv[1])
first = check_prompt(prompts[0], ModerationConfig()); t2 = time.perf_counter()
warm = []
for p in prompts[1:]:
    s = time.perf_counter(); r = check_prompt(p, ModerationConfig()); warm.append(time.perf_counter() - s)
mods = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'simplemma', 'sklearn', 'profanity_check'))
s = time.perf_counter(); check_prompt(sys.argv[2], ModerationConfig()); allowed_first = time.perf_counter() - s
s = time.perf_counter(); check_prompt(sys.argv[2] + ' again', ModerationConfig()); allowed_warm = time.perf_counter() - s
print(json.dumps({"import_s": t1 - t0, "first_refusal_s": t2 - t1, "first_refused": not first.allowed,
                  "warm_median_ms": 1000 * statistics.median(warm), "warm_max_ms": 1000 * max(warm),
                  "loaded_at_refusal": sorted({m.split('.')[0] for m in mods}),
                  "allowed_first_s": allowed_first, "allowed_warm_ms": 1000 * allowed_warm}))
"""


def latency(rows) -> dict:
    harmful = [t for _, label, t in rows if not label.startswith("benign")]
    out = subprocess.run([sys.executable, "-c", _LATENCY, json.dumps(harmful), "a red ball rolls to the right"],
                         capture_output=True, text=True, env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""},
                         check=True)
    return json.loads(out.stdout)


def table(name: str, result: dict) -> str:
    lines = [f"### {name}: recall {result['recall']:.3f} ({result['harmful']} harmful), "
             f"false positives {result['fp_rate']:.3f} ({result['benign']} benign)", "",
             "| category | harmful | refused | recall | benign near it | refused | FP rate |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for cat, d in sorted(result["per_category"].items()):
        rec = f"{d['caught'] / d['harmful']:.3f}" if d["harmful"] else "-"
        fpr = f"{d['false_pos'] / d['benign']:.3f}" if d["benign"] else "-"
        lines.append(f"| {cat} | {d['harmful']} | {d['caught']} | {rec} | {d['benign']} | {d['false_pos']} | {fpr} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("heldout", "train"), default="heldout")
    ap.add_argument("--train", action="store_true", help="retrain tenku's classifier on the train split first")
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--verbose", action="store_true", help="list misses and false positives")
    args = ap.parse_args(argv)
    if args.train:
        start = time.perf_counter()
        model = clf.train_from_file(DATA / "train.tsv")
        model.save(clf.MODEL_PATH)
        clf.own_model.cache_clear()
        print(f"trained tenku's classifier on {DATA / 'train.tsv'}: {len(model.vocab)} features, "
              f"{len(model.classes)} classes, threshold {model.threshold:.3f} "
              f"({time.perf_counter() - start:.1f} s) -> {clf.MODEL_PATH}")
    rows = clf.read_labelled(DATA / f"{args.split}.tsv")
    print(f"split {args.split}: {len(rows)} prompts; layers available: {clf.available()}\n")
    results = {}
    for name, decide in layer_deciders().items():
        results[name] = r = evaluate(rows, decide)
        print(table(name, r), "\n")
        if args.verbose or name == "all layers":
            for label, text in r["misses"]:
                print(f"  missed [{label}] {text}")
            for text, got in r["false_positives"]:
                print(f"  false positive [{got}] {text}")
            for label, got, text in r["other_category"]:
                print(f"  other category [{label} -> {got}] {text}")
            print()
    only = {}
    full = results["all layers"]
    rule_caught = {t for _, label, t in rows if not label.startswith("benign")} - {t for _, t in results["rules"]["misses"]}
    for name in results:
        if name in ("all layers", "rules"):
            continue
        caught = {t for _, label, t in rows if not label.startswith("benign")} - {t for _, t in results[name]["misses"]}
        only[name] = sorted(caught - rule_caught)
        print(f"{name}: refuses {len(caught)} harmful alone, {len(only[name])} that the rules miss: {only[name]}")
    obf = obfuscation_rates(rows)
    print("\nobfuscated harmful prompts refused:")
    for name, d in obf.items():
        print(f"  {name}: {d['refused']}/{d['of']}" + (f"  missed: {d['missed'][:5]}" if d["missed"] else ""))
    lat = None if args.no_latency else latency(rows)
    if lat:
        print(f"\nlatency (fresh process): import {lat['import_s']:.3f} s, first refusal {lat['first_refusal_s']:.3f} s, "
              f"warm refusals median {lat['warm_median_ms']:.2f} ms (max {lat['warm_max_ms']:.1f} ms); modules "
              f"loaded by then: {lat['loaded_at_refusal'] or 'none of torch/simplemma/sklearn'}; an allowed prompt: "
              f"first {lat['allowed_first_s']:.2f} s (lemmatiser + classifiers load), then {lat['allowed_warm_ms']:.1f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps({"split": args.split, "layers": results, "only_by_layer": only,
                                               "obfuscations": obf, "latency": lat}, indent=1, default=str))
    ok = full["recall"] >= 0.97 and full["fp_rate"] <= 0.01
    print(f"\n{'meets' if ok else 'does not meet'} the goal (recall >= 0.97, false positives <= 0.01) on {args.split}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
