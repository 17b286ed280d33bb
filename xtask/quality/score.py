#!/usr/bin/env python3
"""Scores the decoded speech of `tincan lab loss` with PESQ-WB and STOI.

Usage: score.py DIR [--jobs N]

DIR holds manifest.json, the clean reference WAV and one decoded WAV per run (see
`cargo xtask quality`). Writes DIR/scores.json (the manifest's runs with pesq_wb, stoi and
lag_ms added), DIR/quality.svg (PESQ-WB against loss), and prints a condition x scheme table.

Alignment. A received file starts later than the reference (jitter buffer, network and codec
delay) and its delay drifts during the file (time stretching, concealment):
  * PESQ: the global lag (cross-correlation of the first seconds, searched over 0..1 s) is cut
    from the start of the degraded signal; PESQ realigns each utterance itself.
  * STOI: consecutive 2 s segments of the reference are each aligned to the degraded signal
    by their own best lag (within +-300 ms of the global lag) and scored separately; the
    result is the length-weighted mean over the segments that contain speech.
  * Clips: when the manifest lists the clips the reference joins (`clips`, seconds),
    `pesq_wb_clips` and `stoi_clips` are also given: the mean over clips, each clip aligned
    by its own lag (within +-500 ms of the global lag) and scored on its own, as P.862
    expects (a few seconds of speech per score). Delay changes between clips cost nothing
    there; the headline `pesq_wb` and `stoi` (whole file) count them.

Needs pesq, pystoi, numpy and scipy only (xtask/quality/requirements.txt).
"""

import argparse
import json
import math
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from html import escape

import numpy as np
import scipy.io.wavfile
import scipy.signal

FS = 16000  # PESQ wideband and STOI both work at 16 kHz here.
ALIGN_WINDOW_S = 5.0  # reference span used to find the global lag
MAX_GLOBAL_LAG_S = 1.0  # the received signal starts at most this much later
SEGMENT_S = 2.0  # STOI segment length
SEGMENT_SEARCH_S = 0.3  # per-segment lag search, around the global lag
MIN_SEGMENT_S = 1.0  # a shorter remainder joins the previous segment
CLIP_SEARCH_S = 0.5  # per-clip lag search, around the global lag

LAB_HINT = "run `cargo run -p tincan-cli -- lab loss` first"


def fail(message):
    print(f"score.py: {message}", file=sys.stderr)
    sys.exit(1)


def read_wav_16k(path):
    """Reads a PCM WAV as float64 mono in [-1, 1], resampled to 16 kHz."""
    rate, data = scipy.io.wavfile.read(path)
    if data.dtype == np.int16:
        x = data.astype(np.float64) / 32768.0
    elif data.dtype == np.int32:
        x = data.astype(np.float64) / 2147483648.0
    elif data.dtype == np.uint8:
        x = (data.astype(np.float64) - 128.0) / 128.0
    else:
        x = data.astype(np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate != FS:
        g = math.gcd(rate, FS)
        # 48 kHz: resample_poly(x, 1, 3).
        x = scipy.signal.resample_poly(x, FS // g, rate // g)
    return x


def normalized_xcorr(window, template):
    """Correlation of `template` at every offset of `window` ('valid' positions), each
    divided by the energy of the window span under it, so loud passages do not win."""
    n = len(template)
    corr = scipy.signal.correlate(window, template, mode="valid", method="fft")
    energy = np.concatenate(([0.0], np.cumsum(window * window)))
    span = energy[n:] - energy[:-n]
    return corr / np.sqrt(np.maximum(span, 1e-12))


def global_lag(ref, deg):
    """Samples by which `deg` starts later than `ref`, in 0..MAX_GLOBAL_LAG_S."""
    n = min(len(ref), int(ALIGN_WINDOW_S * FS))
    max_lag = int(MAX_GLOBAL_LAG_S * FS)
    window = deg[: n + max_lag]
    if len(window) < n + max_lag:
        window = np.concatenate((window, np.zeros(n + max_lag - len(window))))
    return int(np.argmax(normalized_xcorr(window, ref[:n])))


def segments(length):
    """Consecutive (start, end) segments of SEGMENT_S; a short remainder joins the last."""
    seg = int(SEGMENT_S * FS)
    bounds = list(range(0, length, seg)) + [length]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < MIN_SEGMENT_S * FS:
        del bounds[-2]
    return list(zip(bounds[:-1], bounds[1:]))


def segmented_stoi(ref, deg, lag):
    """Length-weighted mean STOI over reference segments, each aligned by its own lag.

    Returns (stoi or None, lags of the scored segments). Segments without enough speech for
    STOI (pystoi warns and returns 1e-5) are left out."""
    from pystoi import stoi

    search = int(SEGMENT_SEARCH_S * FS)
    # Pad so every candidate position exists: missing received audio counts as silence.
    pad_front = max(0, search - lag)
    padded = np.concatenate((np.zeros(pad_front), deg, np.zeros(len(ref) + 2 * search)))
    total, weight, lags = 0.0, 0, []
    for start, end in segments(len(ref)):
        r = ref[start:end]
        lo = start + lag - search + pad_front  # index in `padded` of the earliest candidate
        window = padded[lo : lo + len(r) + 2 * search]
        best = int(np.argmax(normalized_xcorr(window, r)))
        d = padded[lo + best : lo + best + len(r)]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = float(stoi(r, d, FS, extended=False))
        if any("Not enough STFT frames" in str(w.message) for w in caught):
            continue  # (nearly) silent reference segment: nothing to measure
        total += value * len(r)
        weight += len(r)
        lags.append(lag - search + best)
    return (total / weight if weight else None), lags


def score_clips(ref, deg, lag, clips):
    """PESQ-WB and STOI of each clip of the reference (seconds (start, end)), each aligned
    by its own lag (within +-CLIP_SEARCH_S of the global lag), as ITU-T P.862 expects:
    one utterance group of a few seconds per score, not a long file whose delay moves.
    Returns (per-clip pesq list, per-clip stoi list, per-clip lags in samples)."""
    from pesq import pesq
    from pystoi import stoi
    search = int(CLIP_SEARCH_S * FS)
    pad_front = max(0, search - lag)
    padded = np.concatenate((np.zeros(pad_front), deg, np.zeros(len(ref) + 2 * search)))
    pesqs, stois, lags = [], [], []
    for start_s, end_s in clips:
        start, end = int(start_s * FS), min(int(end_s * FS), len(ref))
        r = ref[start:end]
        if len(r) < FS // 4:
            continue
        lo = start + lag - search + pad_front
        window = padded[lo : lo + len(r) + 2 * search]
        best = int(np.argmax(normalized_xcorr(window, r)))
        d = padded[lo + best : lo + best + len(r)]
        lags.append(lag - search + best)
        try:
            pesqs.append(float(pesq(FS, r, d, "wb")) if np.any(d) else 1.0)
        except Exception:
            pesqs.append(None)
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            stois.append(float(stoi(r, d, FS, extended=False)))
    return pesqs, stois, lags


def score_run(ref, run, directory, clips=None):
    """Adds pesq_wb, stoi, lag_ms (and error when something failed) to a copy of `run`."""
    from pesq import pesq

    out = dict(run)
    out.update(pesq_wb=None, stoi=None, lag_ms=None)
    errors = []
    started = time.monotonic()
    try:
        deg = read_wav_16k(os.path.join(directory, run["wav"]))
    except (OSError, ValueError, KeyError) as e:
        out["error"] = f"cannot read {run.get('wav')!r}: {e}"
        return out
    lag = global_lag(ref, deg)
    out["lag_ms"] = round(lag * 1000.0 / FS, 1)
    trimmed = deg[lag:]
    n = min(len(ref), len(trimmed))
    if n == 0 or not np.any(trimmed[:n]):
        # pesq itself would divide by the peak (0) and fail on NaN.
        errors.append("pesq: the received signal is silent")
    else:
        try:
            out["pesq_wb"] = round(float(pesq(FS, ref[:n], trimmed[:n], "wb")), 3)
        except Exception as e:  # NoUtterancesError, BufferTooShortError, ...
            errors.append(f"pesq: {type(e).__name__}: {e}")
    try:
        value, lags = segmented_stoi(ref, deg, lag)
        if value is None:
            errors.append("stoi: no segment with enough speech")
        else:
            out["stoi"] = round(value, 4)
            out["segment_lag_ms_min"] = round(min(lags) * 1000.0 / FS, 1)
            out["segment_lag_ms_max"] = round(max(lags) * 1000.0 / FS, 1)
    except Exception as e:
        errors.append(f"stoi: {type(e).__name__}: {e}")
    if clips:
        # Secondary figures: mean over clips, each aligned and scored on its own, so that
        # a pause shortened between clips costs nothing. The headline stays the whole
        # file, which also scores every delay change against the receiver.
        try:
            pesqs, stois, lags = score_clips(ref, deg, lag, clips)
            good = [p for p in pesqs if p is not None]
            out["pesq_wb_clips"] = round(sum(good) / len(good), 3) if good else None
            out["stoi_clips"] = round(sum(stois) / len(stois), 4) if stois else None
            out["clip_pesq_wb"] = [None if p is None else round(p, 3) for p in pesqs]
            out["clip_stoi"] = [round(v, 4) for v in stois]
            out["clip_lag_ms"] = [round(l * 1000.0 / FS, 1) for l in lags]
        except Exception as e:
            errors.append(f"clips: {type(e).__name__}: {e}")
    if errors:
        out["error"] = "; ".join(errors)
    out["score_seconds"] = round(time.monotonic() - started, 2)
    return out


_REF = None
_CLIPS = None


def _init_worker(ref, clips):
    global _REF, _CLIPS
    _REF, _CLIPS = ref, clips


def _score_in_worker(args):
    run, directory = args
    return score_run(_REF, run, directory, _CLIPS)


def mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def unique(items):
    return list(dict.fromkeys(items))


def grouped(runs):
    """{(condition, scheme): [runs]} over all seeds."""
    groups = {}
    for run in runs:
        groups.setdefault((run.get("condition"), run.get("scheme")), []).append(run)
    return groups


def print_table(runs):
    conditions = unique(r.get("condition") for r in runs)
    schemes = unique(r.get("scheme") for r in runs)
    groups = grouped(runs)

    def cell(condition, scheme):
        group = groups.get((condition, scheme), [])
        p = mean(r.get("pesq_wb") for r in group)
        s = mean(r.get("stoi") for r in group)
        if not group:
            return ""
        return f"{'-' if p is None else f'{p:.2f}'} / {'-' if s is None else f'{s:.3f}'}"

    rows = [["condition"] + [str(s) for s in schemes]]
    for c in conditions:
        rows.append([str(c)] + [cell(c, s) for s in schemes])
    kbps = []
    for s in schemes:
        k = mean(r.get("kbps_sent") for r in runs if r.get("scheme") == s)
        kbps.append("" if k is None else f"{k:.1f}")
    rows.append(["kbps sent (mean)"] + kbps)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print("PESQ-WB / STOI (mean over seeds)")
    for i, row in enumerate(rows):
        print("  ".join(v.ljust(widths[0]) if j == 0 else v.rjust(widths[j]) for j, v in enumerate(row)))
        if i == 0 or i == len(rows) - 2:
            print("  ".join("-" * w for w in widths))


PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def nice_step(span, target_ticks=6):
    raw = span / target_ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def fmt(v):
    return f"{v:.1f}" if abs(v - round(v)) > 1e-9 else f"{v:.0f}"


def write_svg(runs, path):
    """PESQ-WB against loss: a line per scheme over random loss, markers for Gilbert-Elliott."""
    width, height = 760, 480
    left, right, top, bottom = 70, 190, 40, 60
    pw, ph = width - left - right, height - top - bottom
    y_min, y_max = 1.0, 4.64
    losses = [100.0 * float(r.get("loss") or 0.0) for r in runs]
    x_max = max(losses + [1.0])
    x_step = nice_step(x_max)
    x_max = math.ceil(x_max / x_step - 1e-9) * x_step

    def px(loss_pct):
        return left + pw * loss_pct / x_max

    def py(p):
        return top + ph * (1.0 - (min(max(p, y_min), y_max) - y_min) / (y_max - y_min))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left + pw / 2}" y="22" text-anchor="middle" font-size="15">'
        "Speech quality under packet loss (PESQ-WB, mean over seeds)</text>",
    ]
    # Grid, ticks and tick labels.
    y = 1.0
    while y <= y_max + 1e-9:
        yy = py(y)
        out.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + pw}" y2="{yy:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<line x1="{left - 5}" y1="{yy:.1f}" x2="{left}" y2="{yy:.1f}" stroke="black"/>')
        out.append(f'<text x="{left - 8}" y="{yy + 4:.1f}" text-anchor="end">{y:.1f}</text>')
        y += 0.5
    x = 0.0
    while x <= x_max + 1e-9:
        xx = px(x)
        out.append(f'<line x1="{xx:.1f}" y1="{top}" x2="{xx:.1f}" y2="{top + ph}" stroke="#e5e5e5"/>')
        out.append(f'<line x1="{xx:.1f}" y1="{top + ph}" x2="{xx:.1f}" y2="{top + ph + 5}" stroke="black"/>')
        out.append(f'<text x="{xx:.1f}" y="{top + ph + 19}" text-anchor="middle">{fmt(x)}</text>')
        x += x_step
    # Axes.
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>')
    out.append(
        f'<text x="{left + pw / 2}" y="{height - 15}" text-anchor="middle">packet loss (%)</text>'
    )
    out.append(
        f'<text transform="translate(20 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
        "PESQ-WB (MOS-LQO)</text>"
    )
    # Data.
    schemes = unique(r.get("scheme") for r in runs)
    groups = grouped(runs)
    for i, scheme in enumerate(schemes):
        color = PALETTE[i % len(PALETTE)]
        line, markers = [], []
        for (condition, s), group in groups.items():
            if s != scheme:
                continue
            p = mean(r.get("pesq_wb") for r in group)
            if p is None:
                continue
            loss = 100.0 * mean(float(r.get("loss") or 0.0) for r in group)
            is_random = all(r.get("burst") is None for r in group)
            (line if is_random else markers).append((loss, p, condition))
        line.sort()
        # One line vertex per loss rate (conditions sharing a rate are averaged).
        by_loss = {}
        for l, p, _ in line:
            by_loss.setdefault(l, []).append(p)
        if len(by_loss) > 1:
            points = " ".join(f"{px(l):.1f},{py(mean(ps)):.1f}" for l, ps in sorted(by_loss.items()))
            out.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        for l, p, c in line:
            out.append(
                f'<circle cx="{px(l):.1f}" cy="{py(p):.1f}" r="3" fill="{color}">'
                f"<title>{escape(str(scheme))} {escape(str(c))}: {p:.2f}</title></circle>"
            )
        for l, p, c in markers:
            x0, y0 = px(l), py(p)
            out.append(
                f'<path d="M{x0:.1f},{y0 - 6:.1f} L{x0 + 6:.1f},{y0:.1f} L{x0:.1f},{y0 + 6:.1f} '
                f'L{x0 - 6:.1f},{y0:.1f} Z" fill="white" stroke="{color}" stroke-width="2">'
                f"<title>{escape(str(scheme))} {escape(str(c))}: {p:.2f}</title></path>"
            )
    # Legend.
    lx, ly = left + pw + 20, top + 10
    for i, scheme in enumerate(schemes):
        color = PALETTE[i % len(PALETTE)]
        yy = ly + 20 * i
        out.append(f'<line x1="{lx}" y1="{yy}" x2="{lx + 24}" y2="{yy}" stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{lx + 32}" y="{yy + 4}">{escape(str(scheme))}</text>')
    yy = ly + 20 * len(schemes) + 14
    out.append(f'<line x1="{lx}" y1="{yy}" x2="{lx + 24}" y2="{yy}" stroke="black" stroke-width="2"/>')
    out.append(f'<text x="{lx + 32}" y="{yy + 4}">random loss</text>')
    yy += 20
    out.append(
        f'<path d="M{lx + 12},{yy - 6} L{lx + 18},{yy} L{lx + 12},{yy + 6} L{lx + 6},{yy} Z" '
        'fill="white" stroke="black" stroke-width="2"/>'
    )
    out.append(f'<text x="{lx + 32}" y="{yy + 4}">Gilbert-Elliott</text>')
    out.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", help="directory written by `tincan lab loss`")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel runs")
    args = parser.parse_args()
    directory = args.dir
    manifest_path = os.path.join(directory, "manifest.json")
    if not os.path.isdir(directory):
        fail(f"no directory {directory}: {LAB_HINT}")
    if not os.path.isfile(manifest_path):
        fail(f"no manifest at {manifest_path}: {LAB_HINT}")
    try:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
        runs = list(manifest["runs"])
        # Clip spans in the reference, seconds; older manifests have none.
        clips = [(c["start_s"], c["end_s"]) for c in manifest.get("clips", [])]
        ref_path = os.path.join(directory, manifest.get("reference", "reference.wav"))
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(f"unreadable manifest {manifest_path}: {e}")
    try:
        ref = read_wav_16k(ref_path)
    except (OSError, ValueError) as e:
        fail(f"cannot read the reference {ref_path}: {e}")
    if not runs:
        fail(f"{manifest_path} lists no runs")

    started = time.monotonic()
    jobs = max(1, min(args.jobs, len(runs)))
    print(f"scoring {len(runs)} runs with {jobs} process(es)...", file=sys.stderr)
    if jobs == 1:
        scored = [score_run(ref, run, directory, clips) for run in runs]
    else:
        with ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(ref, clips)) as pool:
            scored = list(pool.map(_score_in_worker, [(run, directory) for run in runs]))
    for run in scored:
        if run.get("error"):
            print(f"score.py: {run.get('wav')}: {run['error']}", file=sys.stderr)

    result = dict(manifest)
    result["runs"] = scored
    scores_path = os.path.join(directory, "scores.json")
    with open(scores_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    svg_path = os.path.join(directory, "quality.svg")
    write_svg(scored, svg_path)
    print_table(scored)
    print(f"\nwrote {scores_path} and {svg_path} ({time.monotonic() - started:.1f} s)")
    failed = sum(1 for r in scored if r.get("pesq_wb") is None and r.get("stoi") is None)
    if failed == len(scored):
        fail("no run could be scored")


if __name__ == "__main__":
    main()
