"""`ros2-pose fmaps report`: per-channel statistics, empty-channel findings and a sim-vs-real
comparison of a feature-map dump, as PNG channel grids, report.json and a static index.html.

Per set and layer: the mean activation map of every channel (mean over the batch) tiled in a grid,
each cell scaled by the layer's largest mean activation so that weak and empty channels look dark
and two sources compare on one scale; empty channels get a red frame. With `compare=(a, b)` the
grids of the same channels of both sets are put side by side (one shared scale), with a per-channel
plot of the mean activation of both and a table of per-channel deltas (b - a).
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ros2_pose.insight.dump import DumpError, open_inputs, open_layer, read_index
from ros2_pose.insight.statistics import (DEFAULT_EPS, DEFAULT_ZERO_FRACTION, ChannelStatistics,
                                          compare_statistics)

CELL_PIXELS = 48          # each channel's map is drawn at least this large (nearest neighbour)
EMPTY_FRAME = (220, 30, 30)


@dataclass
class LayerSummary:
    statistics: ChannelStatistics
    mean_map: np.ndarray | None       # C x H x W (None for a layer without a spatial map)
    shape: tuple[int, ...]


def summarise_layer(array: np.ndarray, batch_size: int = 64) -> LayerSummary:
    """Statistics and mean map of an N x C [x H x W] array, read in batches (memory-mapped input)."""
    if array.ndim < 2 or array.shape[0] == 0:
        raise DumpError(f"feature map of shape {array.shape}: expected N x C [x H x W] with N > 0")
    stats = ChannelStatistics(array.shape[1])
    total = np.zeros(array.shape[1:], np.float64) if array.ndim == 4 else None
    for start in range(0, array.shape[0], batch_size):
        chunk = np.asarray(array[start:start + batch_size], np.float64)
        stats.update(chunk)
        if total is not None:
            total += chunk.sum(axis=0)
    return LayerSummary(stats, None if total is None else total / array.shape[0], tuple(array.shape))


def display_scale(*maps: np.ndarray) -> float:
    """The value shown at full brightness: the 99.5th percentile, not the max, because a few border
    pixels (zero padding seen by the convolutions) are far brighter than the rest and would leave
    every tile black. One scale for all channels, so empty and weak channels look dark, as in FME."""
    return float(max(np.percentile(m, 99.5) for m in maps))


def channel_grid(mean_map: np.ndarray, scale: float, empty: Sequence[int] = (), columns: int | None = None) -> np.ndarray:
    """C x H x W -> one RGB uint8 image of the C maps tiled, values / scale through a colour map."""
    channels, height, width = mean_map.shape
    columns = columns or int(np.ceil(np.sqrt(channels)))
    rows = int(np.ceil(channels / columns))
    zoom = max(1, int(np.ceil(CELL_PIXELS / max(height, width))))
    cell_h, cell_w, gap = height * zoom, width * zoom, 3
    canvas = np.full((rows * (cell_h + gap) + gap, columns * (cell_w + gap) + gap, 3), 255, np.uint8)
    normalised = np.clip(mean_map / scale, 0, 1) if scale > 0 else np.zeros_like(mean_map)
    empty = set(int(c) for c in empty)
    for c in range(channels):
        gray = (normalised[c] * 255).astype(np.uint8)
        gray = cv2.resize(gray, (cell_w, cell_h), interpolation=cv2.INTER_NEAREST)
        cell = cv2.cvtColor(cv2.applyColorMap(gray, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
        if c in empty:
            cv2.rectangle(cell, (0, 0), (cell_w - 1, cell_h - 1), EMPTY_FRAME, max(1, zoom // 8 + 1))
        cv2.putText(cell, str(c), (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
        r, col = divmod(c, columns)
        y, x = gap + r * (cell_h + gap), gap + col * (cell_w + gap)
        canvas[y:y + cell_h, x:x + cell_w] = cell
    return canvas


def labelled(image: np.ndarray, label: str) -> np.ndarray:
    bar = np.full((22, image.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, image], axis=0)


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 12) -> np.ndarray:
    height = max(left.shape[0], right.shape[0])
    pad = lambda im: np.pad(im, ((0, height - im.shape[0]), (0, 0), (0, 0)), constant_values=255)
    return np.concatenate([pad(left), np.full((height, gap, 3), 255, np.uint8), pad(right)], axis=1)


def input_strip(crops: np.ndarray, count: int = 8) -> np.ndarray:
    shown = [np.asarray(c) for c in crops[:count]]
    return np.concatenate([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255) for c in shown], axis=1)


def save_rgb(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def plot_channel_means(path: Path, layer: str, a: str, b: str, mean_a: np.ndarray, mean_b: np.ndarray) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    channels = np.arange(len(mean_a))
    fig, ax = plt.subplots(figsize=(max(6, len(channels) * 0.12), 3), dpi=100)
    ax.bar(channels - 0.2, mean_a, width=0.4, label=a)
    ax.bar(channels + 0.2, mean_b, width=0.4, label=b)
    ax.set_xlabel("channel")
    ax.set_ylabel("mean activation")
    ax.set_title(f"{layer}: mean activation per channel")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(dump: str | Path, out: str | Path, compare: tuple[str, str] | None = None,
                 zero_fraction_threshold: float = DEFAULT_ZERO_FRACTION, eps: float = DEFAULT_EPS,
                 sets: Sequence[str] | None = None) -> dict:
    """Write index.html, report.json and the PNGs into `out`; returns the report.json content."""
    dump, out = Path(dump), Path(out)
    index = read_index(dump)
    names = list(sets) if sets else list(index["sets"])
    if compare is not None:
        names += [n for n in compare if n not in names]
    for name in names:
        if name not in index["sets"]:
            raise DumpError(f"the dump {dump} holds no set {name!r} (sets: {sorted(index['sets'])})")
    out.mkdir(parents=True, exist_ok=True)
    summaries: dict[str, dict[str, LayerSummary]] = {}
    report = {"dump": str(dump), "thresholds": {"zero_fraction": zero_fraction_threshold, "eps": eps},
              "sets": {}, "comparison": None, "findings": []}
    for name in names:
        entry = index["sets"][name]
        summaries[name] = {layer: summarise_layer(open_layer(dump, index, name, layer)) for layer in entry["layers"]}
        strip = f"{name}__inputs.png"
        save_rgb(out / strip, input_strip(open_inputs(dump, index, name)))
        set_report = {"source": entry["source"], "kind": entry["kind"], "model": entry.get("model", ""),
                      "count": entry["count"], "inputs_image": strip, "layers": {}}
        for layer, summary in summaries[name].items():
            stats = summary.statistics
            empty = stats.empty_channels(zero_fraction_threshold, eps)
            layer_report = {"shape": list(summary.shape), "channels": stats.channels,
                            "empty_channels": empty.tolist(), "statistics": stats.table(), "image": None}
            if summary.mean_map is not None:
                image = f"{name}__{layer}.png"
                save_rgb(out / image, channel_grid(summary.mean_map, display_scale(summary.mean_map), empty))
                layer_report["image"] = image
                # One input's maps as well: the mean over many crops blurs the structure a channel
                # responds to (the dolly's bars, its edges), which a single input shows.
                first = np.asarray(open_layer(dump, index, name, layer)[0], np.float64)
                example = f"{name}__{layer}__input0.png"
                save_rgb(out / example, channel_grid(first, display_scale(first), empty))
                layer_report["example_image"] = example
            set_report["layers"][layer] = layer_report
            report["findings"].append(
                f"{len(empty)} of {stats.channels} channels of layer {layer} are empty on this data ({name})"
                + (f": channels {empty.tolist()}" if len(empty) else ""))
        report["sets"][name] = set_report
    if compare is not None:
        report["comparison"] = _compare(out, compare, summaries, zero_fraction_threshold, eps, report["findings"])
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "index.html").write_text(render_html(report))
    return report


def _compare(out: Path, pair: tuple[str, str], summaries, zero_fraction_threshold, eps, findings) -> dict:
    a, b = pair
    if a == b:
        raise DumpError(f"compare needs two different sets, got {a!r} twice")
    common = [layer for layer in summaries[a] if layer in summaries[b]]
    if not common:
        raise DumpError(f"sets {a!r} and {b!r} share no layer (have {list(summaries[a])} and {list(summaries[b])})")
    result = {"a": a, "b": b, "layers": {}}
    for layer in common:
        sa, sb = summaries[a][layer], summaries[b][layer]
        comparison = compare_statistics(sa.statistics, sb.statistics, zero_fraction_threshold, eps)
        layer_result = {"delta": {k: v.tolist() for k, v in comparison.delta.items()},
                        "empty_only_in_a": comparison.empty_only_in_a.tolist(),
                        "empty_only_in_b": comparison.empty_only_in_b.tolist(),
                        "relative_mean_change": comparison.relative_mean_change,
                        "image": None, "plot": f"compare__{layer}__means.png"}
        if sa.mean_map is not None and sb.mean_map is not None and sa.mean_map.shape == sb.mean_map.shape:
            scale = display_scale(sa.mean_map, sb.mean_map)
            left = labelled(channel_grid(sa.mean_map, scale, sa.statistics.empty_channels(zero_fraction_threshold, eps)), a)
            right = labelled(channel_grid(sb.mean_map, scale, sb.statistics.empty_channels(zero_fraction_threshold, eps)), b)
            layer_result["image"] = f"compare__{layer}.png"
            save_rgb(out / layer_result["image"], side_by_side(left, right))
        plot_channel_means(out / layer_result["plot"], layer, a, b, sa.statistics.mean, sb.statistics.mean)
        result["layers"][layer] = layer_result
        change = comparison.relative_mean_change
        if np.isfinite(change):
            findings.append(f"layer {layer}: the mean activation on {b} is {abs(change) * 100:.0f}% "
                            f"{'higher' if change >= 0 else 'lower'} than on {a}")
        if len(comparison.empty_only_in_b):
            findings.append(f"layer {layer}: {len(comparison.empty_only_in_b)} channel(s) are empty on {b} but "
                            f"not on {a}: {comparison.empty_only_in_b.tolist()}")
        if len(comparison.empty_only_in_a):
            findings.append(f"layer {layer}: {len(comparison.empty_only_in_a)} channel(s) are empty on {a} but "
                            f"not on {b}: {comparison.empty_only_in_a.tolist()}")
    return result


# ------------------------------------------------------------------ HTML
_STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:1400px}table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}tr.empty td{background:#fdd}
img{max-width:100%;image-rendering:pixelated}details{margin:0.5em 0}"""


def _stats_table(table: dict[str, list[float]], empty: set[int], delta: dict[str, list[float]] | None = None) -> str:
    columns = list(table)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    if delta:
        head += "".join(f"<th>&Delta; {html.escape(c)}</th>" for c in delta)
    rows = []
    for c in range(len(table["mean"])):
        cells = "".join(f"<td>{table[k][c]:.4g}</td>" for k in columns)
        if delta:
            cells += "".join(f"<td>{delta[k][c]:+.4g}</td>" for k in delta)
        marker = ' class="empty"' if c in empty else ""
        rows.append(f"<tr{marker}><td>{c}{' (empty)' if c in empty else ''}</td>{cells}</tr>")
    return f"<table><tr><th>channel</th>{head}</tr>{''.join(rows)}</table>"


def render_html(report: dict) -> str:
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Feature maps</title><style>{_STYLE}</style>"
             "</head><body><h1>Feature maps</h1>",
             f"<p>Dump: {e(report['dump'])}. A channel is empty when its fraction of zero activations exceeds "
             f"{report['thresholds']['zero_fraction']:g} or its largest activation is below {report['thresholds']['eps']:g}.</p>",
             "<h2>Findings</h2><ul>" + "".join(f"<li>{e(f)}</li>" for f in report["findings"]) + "</ul>"]
    comparison = report.get("comparison")
    if comparison:
        a, b = comparison["a"], comparison["b"]
        parts.append(f"<h2>Comparison: {e(a)} vs {e(b)}</h2><p>Deltas are {e(b)} minus {e(a)}; the channel grids "
                     "of both share one colour scale.</p>")
        for layer, res in comparison["layers"].items():
            parts.append(f"<h3>{e(layer)}</h3>")
            if res["image"]:
                parts.append(f"<img src='{e(res['image'])}' alt='{e(layer)} {e(a)} vs {e(b)}'>")
            parts.append(f"<br><img src='{e(res['plot'])}' alt='{e(layer)} channel means'>")
            table_b = report["sets"][b]["layers"][layer]["statistics"]
            empty_b = set(report["sets"][b]["layers"][layer]["empty_channels"])
            parts.append(f"<details><summary>per-channel statistics on {e(b)} with deltas</summary>"
                         f"{_stats_table(table_b, empty_b, res['delta'])}</details>")
    for name, entry in report["sets"].items():
        parts.append(f"<h2>Set {e(name)}</h2><p>{entry['count']} crops from {e(entry['kind'])} {e(entry['source'])}"
                     f"{' through model ' + e(entry['model']) if entry.get('model') else ''}.</p>"
                     f"<img src='{e(entry['inputs_image'])}' alt='inputs of {e(name)}'>")
        for layer, layer_report in entry["layers"].items():
            empty = layer_report["empty_channels"]
            parts.append(f"<h3>{e(name)}: {e(layer)} (shape {layer_report['shape']})</h3>"
                         f"<p>{len(empty)} of {layer_report['channels']} channels of layer {e(layer)} are empty on "
                         f"this data{': channels ' + e(str(empty)) if empty else ''}.</p>")
            if layer_report["image"]:
                parts.append(f"<p>Mean activation per channel over the set, and one input's maps:</p>"
                             f"<img src='{e(layer_report['image'])}' alt='{e(layer)} mean maps'>")
            if layer_report.get("example_image"):
                parts.append(f"<img src='{e(layer_report['example_image'])}' alt='{e(layer)} maps of input 0'>")
            parts.append(f"<details><summary>per-channel statistics</summary>"
                         f"{_stats_table(layer_report['statistics'], set(empty))}</details>")
    parts.append("</body></html>")
    return "\n".join(parts)
