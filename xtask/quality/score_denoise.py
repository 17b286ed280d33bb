#!/usr/bin/env python3
"""Scores the output of `tincan lab denoise` with PESQ-WB, STOI and (when it is installed)
DNSMOS.

Usage: score_denoise.py DIR [--jobs N] [--check]

DIR holds manifest.json ("kind": "denoise") and, per run, the clean reference, the
processor's input and its output, all 16 kHz mono WAVs that line up sample for sample (the
lab removes the processor's latency), so no alignment is searched here.

Per run: PESQ-WB (ITU-T P.862.2, `pesq`) and STOI (`pystoi`) of the input and of the output
against the clean reference, and DNSMOS P.835 (SIG, BAK, OVRL; Microsoft's DNS Challenge
ONNX models as shipped in the `speechmos` wheel) of the input and the output, which needs no
reference. DNSMOS is optional: `cargo xtask quality` tries to install it and this script
reports it as unavailable when `speechmos` does not import.

Writes DIR/scores.json (the manifest's runs with the scores added) and prints a table per
noise and SNR (means over clips) and the issue's two PESQ criteria:
  * noisy speech at 5 dB SNR: mean PESQ-WB gain (output - input) >= 0.3;
  * clean speech: mean PESQ-WB change (output - input, the input scoring the maximum)
    >= -0.1.
With --check the exit status is 1 when either fails.
"""

import argparse
import json
import os
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import scipy.io.wavfile

FS = 16000
GAIN_AT_5_DB = 0.3
CLEAN_DROP = 0.1

_dnsmos = None
_dnsmos_error = None


def fail(message):
    print(f"score_denoise.py: {message}", file=sys.stderr)
    sys.exit(1)


def read_wav(path):
    rate, data = scipy.io.wavfile.read(path)
    if rate != FS:
        fail(f"{path}: {rate} Hz, expected {FS}")
    if data.dtype != np.int16:
        fail(f"{path}: expected 16-bit PCM")
    x = data.astype(np.float64) / 32768.0
    return x.mean(axis=1) if x.ndim == 2 else x


def dnsmos_module():
    """speechmos.dnsmos, or None with the reason kept in _dnsmos_error."""
    global _dnsmos, _dnsmos_error
    if _dnsmos is None and _dnsmos_error is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from speechmos import dnsmos

            _dnsmos = dnsmos
        except Exception as error:  # ImportError, or a broken onnxruntime
            _dnsmos_error = f"{type(error).__name__}: {error}"
    return _dnsmos


def score_dnsmos(signal):
    module = dnsmos_module()
    if module is None:
        return None
    try:
        result = module.run(np.clip(signal, -1.0, 1.0).astype(np.float32), FS)
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}
    return {k: float(result[k]) for k in ("ovrl_mos", "sig_mos", "bak_mos", "p808_mos")}


def score_run(task):
    import pesq
    from pystoi import stoi

    directory, run = task
    reference = read_wav(os.path.join(directory, run["reference"]))
    scores = {}
    for side in ("input", "output"):
        degraded = read_wav(os.path.join(directory, run[side]))
        n = min(len(reference), len(degraded))
        try:
            scores[f"pesq_wb_{side}"] = float(pesq.pesq(FS, reference[:n], degraded[:n], "wb"))
        except Exception as error:  # pesq raises when it finds no utterance
            scores[f"pesq_wb_{side}"] = None
            scores[f"pesq_error_{side}"] = str(error)
        scores[f"stoi_{side}"] = float(stoi(reference[:n], degraded[:n], FS, extended=False))
        scores[f"dnsmos_{side}"] = score_dnsmos(degraded)
    return {**run, **scores}


def mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def fmt(value, width=6, digits=2):
    return f"{value:{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def dnsmos_ovrl(run, side):
    d = run.get(f"dnsmos_{side}")
    return d.get("ovrl_mos") if isinstance(d, dict) else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()

    manifest_path = os.path.join(args.dir, "manifest.json")
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
    except OSError as error:
        fail(f"{manifest_path}: {error}: run `cargo run --release -p tincan-cli -- lab denoise` first")
    if manifest.get("kind") != "denoise":
        fail(f"{manifest_path} is not from `tincan lab denoise`")
    runs = manifest["runs"]

    tasks = [(args.dir, run) for run in runs]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        scored = list(pool.map(score_run, tasks))

    dnsmos_available = dnsmos_module() is not None
    manifest["runs"] = scored
    manifest["dnsmos"] = "speechmos 0.0.1.1 (DNSMOS P.835)" if dnsmos_available else f"unavailable ({_dnsmos_error})"
    with open(os.path.join(args.dir, "scores.json"), "w") as f:
        json.dump(manifest, f, indent=2)

    print(
        f"tincan lab denoise scores: processor at {manifest['processing_rate']} Hz, "
        f"strength {manifest['strength']}, {len(scored)} runs; DNSMOS: {manifest['dnsmos']}"
    )
    print(
        f"{'noise':<10} {'SNR':>5} {'clips':>5}  {'PESQ in':>7} {'out':>6} {'gain':>6}  "
        f"{'STOI in':>7} {'out':>6}  {'DNSMOS in':>9} {'out':>6}"
    )
    keys = []
    for run in scored:
        key = (run["noise"], run["snr_db"])
        if key not in keys:
            keys.append(key)
    for noise, snr in keys:
        group = [r for r in scored if r["noise"] == noise and r["snr_db"] == snr]
        pesq_in = mean(r["pesq_wb_input"] for r in group)
        pesq_out = mean(r["pesq_wb_output"] for r in group)
        gain = mean(
            r["pesq_wb_output"] - r["pesq_wb_input"]
            for r in group
            if r["pesq_wb_output"] is not None and r["pesq_wb_input"] is not None
        )
        snr_text = "clean" if snr is None else f"{snr:g}"
        print(
            f"{noise:<10} {snr_text:>5} {len(group):>5}  {fmt(pesq_in, 7)} {fmt(pesq_out)} {fmt(gain)}  "
            f"{fmt(mean(r['stoi_input'] for r in group), 7, 3)} {fmt(mean(r['stoi_output'] for r in group), 6, 3)}  "
            f"{fmt(mean(dnsmos_ovrl(r, 'input') for r in group), 9)} {fmt(mean(dnsmos_ovrl(r, 'output') for r in group))}"
        )

    def change(group):
        return mean(
            r["pesq_wb_output"] - r["pesq_wb_input"]
            for r in group
            if r["pesq_wb_output"] is not None and r["pesq_wb_input"] is not None
        )

    at_5 = [r for r in scored if r["snr_db"] == 5]
    clean = [r for r in scored if r["snr_db"] is None]
    ok = True
    if at_5:
        gain = change(at_5)
        passed = gain is not None and gain >= GAIN_AT_5_DB
        ok &= passed
        print(
            f"5 dB SNR: mean PESQ-WB gain {fmt(gain, 0)} over {len(at_5)} runs "
            f"(goal >= {GAIN_AT_5_DB}): {'met' if passed else 'NOT met'}"
        )
    if clean:
        drop = change(clean)
        passed = drop is not None and drop >= -CLEAN_DROP
        ok &= passed
        print(
            f"clean speech: mean PESQ-WB change {fmt(drop, 0)} over {len(clean)} clips "
            f"(goal >= -{CLEAN_DROP}): {'met' if passed else 'NOT met'}"
        )
    print(f"scores.json in {args.dir}")
    if args.check and not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
