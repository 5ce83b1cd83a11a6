"""The claims report: CLAIMS.md, claims.html (figures inline) and claims.json, from claim results."""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from sparsebench.atomic import atomic_write_text
from sparsebench.claims.evaluate import ClaimResult, decisive_check, decisive_notes
from sparsebench.report.names import metric_label, metric_name
from sparsebench.report.stats import MAX_SEEDS, Verdict
from sparsebench.report.tables import markdown_table

# One colour per verdict, in the page's styles and the summary figure alike.
VERDICT_COLOURS = {"supported": "#176117", "refuted": "#a31515", "inconclusive": "#a07800", "not run": "#777777"}

RULE = ("The measured effect shown for a claim is that of the check that decides its verdict. A verdict comes "
        "from the seeds, never from one run, and never from an epoch chosen on the test set. Each check declares "
        "the smallest effect that matters: for \"A is larger than B\", supported when the 95% interval of the "
        "difference of means (Welch) lies above zero and not wholly inside the negligible band (± the smallest "
        "effect), refuted when it lies below zero (opposite) or wholly inside the band (negligible), inconclusive "
        "otherwise, with the number of seeds per group that would decide it at the observed spread; for \"little "
        "or no loss\", supported when the interval of the loss lies under the declared margin; checks marked "
        "paired compare runs of the same seed; groups without any spread over seeds give no interval. A claim is "
        "supported when all its checks are, refuted when any is. A verdict marked * rests on runs whose training "
        "had not converged; one marked † on fewer runs than the profile plans.")

OVERVIEW_CAPTION = (
    "One row per claim, its deciding check: the measured effect (dot) and its 95% interval (bar), divided by the "
    "check's smallest effect that matters, or by its margin for within / at most / equivalent checks, and turned so "
    "that the claimed direction points right. The grey band [−1, 1] is then every row's negligible band: a greater / "
    "less check is supported when its bar lies right of 0 and not wholly inside the band, refuted when it lies left "
    "of 0 or wholly inside it; a within / at most check is supported when its bar lies right of −1; an equivalence "
    "check when it lies inside the band. The axis is linear inside ±1 and logarithmic beyond. On the right: the "
    "verdict and the effect in the metric's own units.")


def _number(x: float | None) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+,.4g}"


def effect_text(check: Verdict) -> str:
    """The measured effect of a check and its interval, in one phrase."""
    if check.test == "identical":
        return f"largest |Δ| of a pair {abs(check.largest_difference):.3g} (margin {check.margin or 0:g})"
    if check.test == "within":
        loss, low, high = check.loss
        return f"loss {_number(loss)} [{_number(low)}, {_number(high)}], margin {check.margin:g}"
    text = f"Δ {_number(check.effect)} [{_number(check.low)}, {_number(check.high)}]"
    if check.margin is not None and check.test in ("at_most", "equivalent"):
        text += f", margin {check.margin:.3g}"
    if check.smallest_effect:
        text += f", negligible within ±{check.smallest_effect:,.4g}"
    return text


def described(check: Verdict) -> str:
    """The check's one-line description with its metric named in words rather than by its path."""
    text = check.description
    if text.startswith(check.metric + ":"):
        text = metric_name(check.metric).name + text[len(check.metric):]
    return text


def human_table(table: pd.DataFrame) -> pd.DataFrame:
    """A claim's table (groups by metrics) with its metrics named in words and units, the longer of the two
    lists running down the page: one row per group of runs, or, when there are more metrics than groups,
    one row per metric (long names read well down a column, not across many headers)."""
    if len(table.columns) > len(table.index):
        out = table.T
        out.insert(0, "metric", [metric_label(c) for c in out.index])
    else:
        out = table.rename(columns=metric_label)
        out.insert(0, "runs", list(table.index))
    out.columns.name = None  # the pivot's name would head a row of its own in HTML
    return out.reset_index(drop=True)


def seeds_text(check: Verdict) -> str:
    return f"{check.n_a}" if "constant" in check.b or check.a == check.b else f"{check.n_a} vs {check.n_b}"


def verdict_text(result: ClaimResult) -> str:
    """The verdict with its qualifiers: how it is refuted, * unconverged runs, † fewer runs than planned."""
    decisive, notes = decisive_check(result), decisive_notes(result)
    text = result.verdict
    if decisive is not None and decisive.refuted_as and result.verdict == "refuted":
        text += f" ({decisive.refuted_as})"
    # The row shows the deciding check, so its mark is that check's runs'
    if (notes.unconverged if notes is not None else result.unconverged):
        text += " *"
    if result.incomplete:
        text += " †"
    return text


def _why(result: ClaimResult) -> str:
    """What a summary row adds: the reason an undecided check gives, the seeds that would decide it,
    the runs missing or unconverged."""
    decisive, notes = decisive_check(result), decisive_notes(result)
    parts = []
    if decisive is not None:
        if decisive.reason:
            parts.append(decisive.reason)
        if decisive.verdict == "inconclusive" and decisive.seeds_needed is not None:
            needed = decisive.seeds_needed
            parts.append(f"{f'~{needed}' if needed <= MAX_SEEDS else f'more than {MAX_SEEDS}'} seeds per group would "
                         f"decide it")
    if notes is not None and decisive is not None and notes.text(decisive):
        parts.append(notes.text(decisive))
    return "; ".join(parts)


def _figure_link(result: ClaimResult, out: Path, suffix: str = ".png") -> str | None:
    for path in result.figures:
        if Path(path).suffix == suffix:
            return str(Path(path).relative_to(out))
    return None


def _summary_rows(results: list[ClaimResult], out: Path) -> list[list[str]]:
    rows = []
    for result in results:
        claim = result.claim
        decisive = decisive_check(result)
        if decisive is not None:
            effect, seeds = f"{metric_label(decisive.metric)}: {effect_text(decisive)}", seeds_text(decisive)
        else:
            effect, seeds = result.reason or "–", "–"
        link = _figure_link(result, out)
        rows.append([claim.id, claim.statement, effect, seeds, f"**{verdict_text(result)}**", _why(result) or "–",
                     f"[figure]({link})" if link else "–"])
    return rows


SUMMARY_HEADER = ["claim", "statement", "measured effect (95% CI)", "seeds", "verdict", "notes", "figure"]


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    escape = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _fixed(x: float, decimals: int) -> str:
    return f"{x:,.{decimals}f}"


def _cell(stats: dict | None, decimals: int) -> str:
    """Our mean ± standard deviation (seeds): one decimal more than the paper prints, so that a difference
    smaller than its last digit still shows; whole numbers stay whole."""
    if not stats or not stats["n"]:
        return "–"
    places = decimals + 1 if decimals else 0
    spread = f" ± {_fixed(stats['std'], places)}" if stats["n"] > 1 and math.isfinite(stats["std"]) else ""
    return f"{_fixed(stats['mean'], places)}{spread} ({stats['n']})"


def reproduction_rows(result: ClaimResult) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a protocol's table: per column the paper's value, ours as the paper
    measured it, the difference in units of the paper's spread (! beyond 2), and the honest figure."""
    table = result.claim.table
    header = ["network"]
    for column in table.columns:
        header += [f"{column.name}: paper", "ours", "Δ / paper's spread"]
        if column.honest:
            header.append("ours, honest")
    rows = []
    for row in result.reproduction:
        cells = [row.label]
        for column, cell in zip(table.columns, row.cells):
            places = column.decimals
            published = "–" if cell["published"] is None else (_fixed(cell["published"], places) + (
                f" ± {_fixed(cell['spread'], places)}" if cell["spread"] else " (no spread given)"))
            z = "–" if not math.isfinite(cell["z"]) else f"{cell['z']:+.1f}" + (" !" if cell["disagrees"] else "")
            cells += [published, _cell(cell["ours"], places), z]
            if column.honest:
                cells.append(_cell(cell["honest"], places))
        rows.append(cells)
    return header, rows


def seed_ranges(seeds: Sequence[int]) -> str:
    """Seeds written as runs of consecutive numbers: 0–2, 5, 7–9."""
    groups: list[list[int]] = []
    for seed in sorted(seeds):
        if groups and seed == groups[-1][-1] + 1:
            groups[-1].append(seed)
        else:
            groups.append([seed])
    return ", ".join(f"{g[0]}–{g[-1]}" if len(g) > 1 else f"{g[0]}" for g in groups)


def shortfall_text(result: ClaimResult) -> str:
    """A protocol's runs without a record, in words: how many of the planned, and which seeds of which
    row of the paper's table, so that a table on fewer seeds than the paper's never reads as complete."""
    if not result.short:
        return ""
    where = "; ".join(f"{label}, seed{'s' if len(seeds) > 1 else ''} {seed_ranges(seeds)}"
                      for label, seeds in result.short.items())
    return (f"† {result.runs} of the {result.planned} planned runs have a completed record; without one (not run "
            f"yet, or failed): {where}.")


def _reproduction_md(result: ClaimResult) -> list[str]:
    table = result.claim.table
    header, rows = reproduction_rows(result)
    rows = [[f"**{cell}**" if cell.endswith(" !") else cell for cell in row] for row in rows]  # let it stand out
    caveat = "" if table.confirmed else (" **Unconfirmed:** these published numbers could not be checked against the "
                                         "paper's text here; treat them as unverified until someone does.")
    if table.has_spread:
        spreads = (f"The paper's ± is the {table.spread}; ours is the same kind over our seeds (count in brackets). "
                   f"Δ / paper's spread: (ours − paper) / the paper's spread, marked ! beyond 2.")
    else:  # nothing to measure a difference against
        spreads = (f"The paper's spread: {table.spread}. Ours: standard deviation over our seeds (count in "
                   f"brackets); no Δ in units of a spread the paper does not give.")
    return [f"**{table.title}** Source: {table.source}. {spreads}{caveat}" + (f" {table.note}" if table.note else ""),
            "", _md_table(header, rows)]


def _section_md(result: ClaimResult, out: Path) -> str:
    claim = result.claim
    experiments = result.experiments or claim.all_experiments()
    parts = [f"## {claim.id}: {claim.statement}", "",
             f"Source: {claim.source}. Experiments: {', '.join(f'`{e}`' for e in experiments)}. "
             f"Verdict: **{verdict_text(result)}**" + (f" ({result.reason})" if result.reason else "") + "."]
    if claim.note:
        parts += ["", claim.note]
    shortfall = shortfall_text(result)
    if shortfall:
        parts += ["", shortfall]
    if result.reproduction:
        parts += ["", *_reproduction_md(result)]
    if result.checks:
        parts += ["", "Checks:", ""]
        for c, v, notes in zip(claim.checks, result.checks, result.notes or [None] * len(result.checks)):
            extra = f" {notes.text(v)}." if notes is not None and notes.text(v) else ""
            why = f" Smallest effect that matters: {c.smallest_effect:g} ({c.smallest_effect_reason})." \
                if c.smallest_effect is not None else ""
            parts.append(f"- {c.label}: **{v.verdict}{f' ({v.refuted_as})' if v.refuted_as else ''}**. "
                         f"{described(v)}.{why}{extra}")
    if result.table is not None:
        parts += ["", "Mean ± half-width of the 95% interval over seeds (number of seeds):", "",
                  markdown_table(human_table(result.table))]
    link = _figure_link(result, out)
    if link:
        parts += ["", f"![{claim.id}]({link})"]
    return "\n".join(parts)


def _overview_png(overview: Sequence[Path]) -> Path | None:
    return next((Path(p) for p in overview if Path(p).suffix == ".png"), None)


def write_markdown(results: list[ClaimResult], out: Path, header: str, unused: list[str] = (),
                   overview: Sequence[Path] = ()) -> Path:
    """CLAIMS.md; ``overview``: the summary figure's files (``overview.plot_claims_overview``), shown first."""
    claims = [r for r in results if r.claim.kind == "claim"]
    protocols = [r for r in results if r.claim.kind == "protocol"]
    text = [f"# Claims report\n\n{header}\n"]
    png = _overview_png(overview)
    if png is not None:
        text.append(f"![Every claim's effect on a common scale]({png.relative_to(out)})\n\n{OVERVIEW_CAPTION}\n")
    if claims:  # a report of paper protocols alone has no verdicts to summarise
        text += [f"{RULE}\n", _md_table(SUMMARY_HEADER, _summary_rows(claims, out))]
    if unused:
        text += ["", f"Records of planned runs that could not be used ({len(unused)}):", "",
                 *[f"- {line}" for line in unused]]
    text += ["", *[_section_md(r, out) + "\n" for r in claims]]
    if protocols:
        text += ["# Paper protocols\n", *[_section_md(r, out) + "\n" for r in protocols]]
    return atomic_write_text(out / "CLAIMS.md", "\n".join(text))


def _image(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,{data}">'


def _html_table(header: list[str], rows: list[list[str]], raw_columns: tuple[int, ...] = ()) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell if i in raw_columns else e(str(cell))}</td>"
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _reproduction_html(result: ClaimResult) -> str:
    """A protocol's table with one header cell over each paper column's group of cells, numbers aligned
    right, and each difference beyond twice the paper's spread (marked !) highlighted."""
    e = html.escape
    table = result.claim.table
    header, rows = reproduction_rows(result)
    top = ['<th rowspan="2">network</th>'] + [f'<th colspan="{3 + bool(c.honest)}" class="start group">{e(c.name)}</th>'
                                              for c in table.columns]
    sub, starts = [], set()
    for c in table.columns:
        starts.add(len(sub) + 1)
        sub += ["paper", "ours", "Δ / paper's spread"] + (["ours, honest"] if c.honest else [])
    subheads = "".join(f'<th class="num{" start" if i + 1 in starts else ""}">{e(h)}</th>' for i, h in enumerate(sub))
    body = []
    for row in rows:
        cells = [f"<td>{e(row[0])}</td>"]
        for i, cell in enumerate(row[1:], start=1):
            classes = ["num"] + (["start"] if i in starts else []) + (["disagrees"] if cell.endswith(" !") else [])
            cells.append(f'<td class="{" ".join(classes)}">{e(cell)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table class="reproduction"><tr>{"".join(top)}</tr><tr>{subheads}</tr>'
            f'{"".join(body)}</table></div>')


STYLE = ("body{font-family:system-ui,sans-serif;max-width:80em;margin:auto;padding:1em;line-height:1.4;color:#222}"
         "table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em}table.numbers,table.reproduction{font-size:.85em}"
         "td,th{border-bottom:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
         "th{background:#f3f3f3;font-weight:600}.scroll{overflow-x:auto}"
         ".num,table.numbers td:not(:first-child){text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
         "table.numbers th:not(:first-child){text-align:right}table.numbers td:first-child{min-width:16em}"
         ".start{border-left:2px solid #999}th.group{text-align:center}table.reproduction td:first-child{white-space:nowrap}"
         "td.disagrees{background:#fbd9d3;color:#8b0f0f;font-weight:700}"
         "figure{margin:1em 0}figcaption{font-size:.9em;color:#444;max-width:60em}img{max-width:100%}"
         "section{border-top:1px solid #ddd;margin-top:2em}li{margin:.3em 0}"
         + "".join(f".{v.replace(' ', '-')}{{color:{c}}}" for v, c in VERDICT_COLOURS.items()))


def write_html(results: list[ClaimResult], out: Path, header: str, unused: list[str] = (),
               overview: Sequence[Path] = ()) -> Path:
    """claims.html, figures inline; ``overview``: the summary figure's files, shown first."""
    e = html.escape
    claims = [r for r in results if r.claim.kind == "claim"]
    rows = []
    for result, (claim_id, statement, effect, seeds, _, why, _) in zip(claims, _summary_rows(claims, out)):
        verdict = f'<b class="{e(result.verdict.replace(" ", "-"))}">{e(verdict_text(result))}</b>'
        link = f'<a href="#{e(claim_id)}">figure</a>' if result.figures else "–"
        rows.append([f'<a href="#{e(claim_id)}">{e(claim_id)}</a>', e(statement), e(effect), e(seeds), verdict, e(why),
                     link])
    summary = _html_table(SUMMARY_HEADER, rows, raw_columns=tuple(range(7)))
    png = _overview_png(overview)
    top = (f"<figure>{_image(png)}<figcaption>{e(OVERVIEW_CAPTION)}</figcaption></figure>" if png is not None else "")
    sections = []
    for number, result in enumerate(results):
        claim = result.claim
        if claim.kind == "protocol" and all(r.claim.kind != "protocol" for r in results[:number]):
            sections.append("<h1>Paper protocols</h1>")
        experiments = result.experiments or claim.all_experiments()
        verdict_class = result.verdict.replace(" ", "-")
        body = [f'<h2 id="{e(claim.id)}">{e(claim.id)}: {e(claim.statement)}</h2>',
                f"<p>Source: {e(claim.source)}. Experiments: {e(', '.join(experiments))}. "
                f"Verdict: <b class=\"{e(verdict_class)}\">{e(verdict_text(result))}</b>"
                + (f" ({e(result.reason)})" if result.reason else "") + ".</p>"]
        if claim.note:
            body.append(f"<p>{e(claim.note)}</p>")
        shortfall = shortfall_text(result)
        if shortfall:
            body.append(f"<p>{e(shortfall)}</p>")
        if result.reproduction:
            caption = _reproduction_md(result)[0].replace("**", "")
            body += [f"<p>{e(caption)}</p>", _reproduction_html(result)]
        if result.checks:
            items = []
            for c, v, notes in zip(claim.checks, result.checks, result.notes or [None] * len(result.checks)):
                extra = f" {notes.text(v)}." if notes is not None and notes.text(v) else ""
                why = f" Smallest effect that matters: {c.smallest_effect:g} ({c.smallest_effect_reason})." \
                    if c.smallest_effect is not None else ""
                outcome = v.verdict + (f" ({v.refuted_as})" if v.refuted_as else "")
                items.append(f'<li>{e(c.label)}: <b class="{e(v.verdict)}">{e(outcome)}</b>. '
                             f"{e(described(v))}.{e(why)}{e(extra)}</li>")
            body.append("<ul>" + "".join(items) + "</ul>")
        if result.table is not None:
            body.append('<div class="scroll">' + human_table(result.table).to_html(index=False, escape=True, border=0,
                                                                                 classes="numbers") + "</div>")
        body += [_image(p) for p in result.figures if Path(p).suffix == ".png"]
        sections.append("<section>" + "".join(body) + "</section>")
    unused_html = ("<p>Records of planned runs that could not be used:</p><ul>"
                   + "".join(f"<li>{e(line)}</li>" for line in unused) + "</ul>") if unused else ""
    page = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>sparsebench claims</title>"
            f"<style>{STYLE}</style></head><body><h1>Claims report</h1><p>{e(header)}</p>{top}"
            + (f'<p>{e(RULE)}</p><div class="scroll">{summary}</div>' if claims else "")
            + f'{unused_html}{"".join(sections)}</body></html>')
    return atomic_write_text(out / "claims.html", page)


def _reproduction_json(result: ClaimResult) -> list[dict]:
    table = result.claim.table
    return [{"network": row.label, **{column.name: cell for column, cell in zip(table.columns, row.cells)}}
            for row in result.reproduction]


def write_json(results: list[ClaimResult], out: Path, header: dict) -> Path:
    data = {**header, "claims": [
        {"id": r.claim.id, "kind": r.claim.kind, "statement": r.claim.statement, "verdict": r.verdict,
         "verdict_text": verdict_text(r), "reason": r.reason, "runs": r.runs, "experiments": r.experiments,
         "figures": [str(Path(p).relative_to(out)) for p in r.figures],
         "checks": [{"label": c.label, "metric_name": metric_label(v.metric),
                     "smallest_effect_reason": c.smallest_effect_reason, **v.as_dict(),
                     "notes": n.text(v) if n is not None else ""}
                    for c, v, n in zip(r.claim.checks, r.checks, r.notes or [None] * len(r.checks))],
         "reproduction": _reproduction_json(r) if r.reproduction else None,
         **({"planned_runs": r.planned, "seeds_short": r.short} if r.planned else {})}
        for r in results]}
    return atomic_write_text(out / "claims.json", json.dumps(data, indent=1, default=str) + "\n")
