"""The claims report: CLAIMS.md, claims.html (figures inline) and claims.json, from claim results."""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

from sparsebench.atomic import atomic_write_text
from sparsebench.claims.evaluate import ClaimResult, ReproductionRow, decisive_check, decisive_notes
from sparsebench.report.stats import MAX_SEEDS, Verdict
from sparsebench.report.tables import markdown_table

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


def _number(x: float | None) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.4g}"


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
        text += f", negligible within ±{check.smallest_effect:.3g}"
    return text


def seeds_text(check: Verdict) -> str:
    return f"{check.n_a}" if "constant" in check.b or check.a == check.b else f"{check.n_a} vs {check.n_b}"


def verdict_text(result: ClaimResult) -> str:
    """The verdict with its qualifiers: how it is refuted, * unconverged runs, † fewer runs than planned."""
    decisive = decisive_check(result)
    text = result.verdict
    if decisive is not None and decisive.refuted_as and result.verdict == "refuted":
        text += f" ({decisive.refuted_as})"
    if result.unconverged:
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
            parts.append(f"~{needed if needed <= MAX_SEEDS else f'>{MAX_SEEDS}'} seeds per group would decide it")
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
            effect, seeds = f"{decisive.metric}: {effect_text(decisive)}", seeds_text(decisive)
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


def _cell(stats: dict | None, error: bool = False) -> str:
    if not stats or not stats["n"]:
        return "–"
    spread = f" ± {stats['std']:.3g}" if stats["n"] > 1 and math.isfinite(stats["std"]) else ""
    return f"{stats['mean']:.4g}{spread} ({stats['n']})"


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
            published = "–" if cell["published"] is None else (
                f"{cell['published']:.4g}" + (f" ± {cell['spread']:.3g}" if cell["spread"] else " (no spread given)"))
            z = "–" if not math.isfinite(cell["z"]) else f"{cell['z']:+.1f}" + (" !" if cell["disagrees"] else "")
            cells += [published, _cell(cell["ours"]), z]
            if column.honest:
                cells.append(_cell(cell["honest"]))
        rows.append(cells)
    return header, rows


def _reproduction_md(result: ClaimResult) -> list[str]:
    table = result.claim.table
    header, rows = reproduction_rows(result)
    caveat = "" if table.confirmed else (" **Unconfirmed:** these published numbers could not be checked against the "
                                         "paper's text here; treat them as unverified until someone does.")
    return [f"**{table.title}** Source: {table.source}. The paper's ± is the {table.spread}; ours is the same kind "
            f"over our seeds (count in brackets). Δ / paper's spread: (ours − paper) / the paper's spread, marked ! "
            f"beyond 2.{caveat}" + (f" {table.note}" if table.note else ""), "", _md_table(header, rows)]


def _section_md(result: ClaimResult, out: Path) -> str:
    claim = result.claim
    experiments = result.experiments or claim.all_experiments()
    parts = [f"## {claim.id}: {claim.statement}", "",
             f"Source: {claim.source}. Experiments: {', '.join(f'`{e}`' for e in experiments)}. "
             f"Verdict: **{verdict_text(result)}**" + (f" ({result.reason})" if result.reason else "") + "."]
    if claim.note:
        parts += ["", claim.note]
    if result.reproduction:
        parts += ["", *_reproduction_md(result)]
    if result.checks:
        parts += ["", "Checks:", ""]
        for c, v, notes in zip(claim.checks, result.checks, result.notes or [None] * len(result.checks)):
            extra = f" {notes.text(v)}." if notes is not None and notes.text(v) else ""
            why = f" Smallest effect that matters: {c.smallest_effect:g} ({c.smallest_effect_reason})." \
                if c.smallest_effect is not None else ""
            parts.append(f"- {c.label}: **{v.verdict}{f' ({v.refuted_as})' if v.refuted_as else ''}**. "
                         f"{v.description}.{why}{extra}")
    if result.table is not None:
        table = result.table.reset_index().rename(columns={"label": "runs"})
        parts += ["", "Mean ± half-width of the 95% interval over seeds (number of seeds):", "",
                  markdown_table(table)]
    link = _figure_link(result, out)
    if link:
        parts += ["", f"![{claim.id}]({link})"]
    return "\n".join(parts)


def write_markdown(results: list[ClaimResult], out: Path, header: str, unused: list[str] = ()) -> Path:
    claims = [r for r in results if r.claim.kind == "claim"]
    protocols = [r for r in results if r.claim.kind == "protocol"]
    text = [f"# Claims report\n\n{header}\n\n{RULE}\n", _md_table(SUMMARY_HEADER, _summary_rows(claims, out))]
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


def write_html(results: list[ClaimResult], out: Path, header: str, unused: list[str] = ()) -> Path:
    e = html.escape
    claims = [r for r in results if r.claim.kind == "claim"]
    rows = []
    for result, (claim_id, statement, effect, seeds, _, why, _) in zip(claims, _summary_rows(claims, out)):
        verdict = f'<b class="{e(result.verdict)}">{e(verdict_text(result))}</b>'
        link = f'<a href="#{e(claim_id)}">figure</a>' if result.figures else "–"
        rows.append([e(claim_id), e(statement), e(effect), e(seeds), verdict, e(why), link])
    summary = _html_table(SUMMARY_HEADER, rows, raw_columns=tuple(range(7)))
    sections = []
    for result in results:
        claim = result.claim
        experiments = result.experiments or claim.all_experiments()
        body = [f'<h2 id="{e(claim.id)}">{e(claim.id)}: {e(claim.statement)}</h2>',
                f"<p>Source: {e(claim.source)}. Experiments: {e(', '.join(experiments))}. "
                f"Verdict: <b class=\"{e(result.verdict)}\">{e(verdict_text(result))}</b>"
                + (f" ({e(result.reason)})" if result.reason else "") + ".</p>"]
        if claim.note:
            body.append(f"<p>{e(claim.note)}</p>")
        if result.reproduction:
            caption, _, table = _reproduction_md(result)
            header_row, table_rows = reproduction_rows(result)
            body += [f"<p>{e(caption.replace('**', ''))}</p>", _html_table(header_row, table_rows)]
        if result.checks:
            items = []
            for c, v, notes in zip(claim.checks, result.checks, result.notes or [None] * len(result.checks)):
                extra = f" {notes.text(v)}." if notes is not None and notes.text(v) else ""
                why = f" Smallest effect that matters: {c.smallest_effect:g} ({c.smallest_effect_reason})." \
                    if c.smallest_effect is not None else ""
                outcome = v.verdict + (f" ({v.refuted_as})" if v.refuted_as else "")
                items.append(f"<li>{e(c.label)}: <b>{e(outcome)}</b>. {e(v.description)}.{e(why)}{e(extra)}</li>")
            body.append("<ul>" + "".join(items) + "</ul>")
        if result.table is not None:
            body.append(result.table.to_html(escape=True, border=0, classes="numbers"))
        body += [_image(p) for p in result.figures if Path(p).suffix == ".png"]
        sections.append("<section>" + "".join(body) + "</section>")
    unused_html = ("<p>Records of planned runs that could not be used:</p><ul>"
                   + "".join(f"<li>{e(line)}</li>" for line in unused) + "</ul>") if unused else ""
    style = ("body{font-family:sans-serif;max-width:75em;margin:auto;padding:1em}table{border-collapse:collapse}"
             "td,th{border-bottom:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
             ".supported{color:#176117}.refuted{color:#a31515}.inconclusive{color:#8a6d00}img{max-width:100%}")
    page = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>sparsebench claims</title>"
            f"<style>{style}</style></head><body><h1>Claims report</h1><p>{e(header)}</p><p>{e(RULE)}</p>"
            f"{summary}{unused_html}{''.join(sections)}</body></html>")
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
         "checks": [{"label": c.label, "smallest_effect_reason": c.smallest_effect_reason, **v.as_dict(),
                     "notes": n.text(v) if n is not None else ""}
                    for c, v, n in zip(r.claim.checks, r.checks, r.notes or [None] * len(r.checks))],
         "reproduction": _reproduction_json(r) if r.reproduction else None}
        for r in results]}
    return atomic_write_text(out / "claims.json", json.dumps(data, indent=1, default=str) + "\n")
