"""The claims report: CLAIMS.md, claims.html (figures inline) and claims.json, from claim results."""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

from sparsebench.claims.evaluate import ClaimResult, decisive_check
from sparsebench.atomic import atomic_write_text
from sparsebench.report.stats import Verdict
from sparsebench.report.tables import markdown_table

RULE = ("The measured effect shown for a claim is that of the check that decides its verdict. "
        "A verdict comes from the seeds, never from one run: for \"A is larger than B\", supported when the 95% "
        "interval of the difference of means (Welch) lies above zero, refuted when it lies below, inconclusive "
        "otherwise; for \"little or no loss\", supported when the interval of the loss lies under the declared "
        "margin; checks marked paired compare runs of the same seed. A claim is supported when all its checks "
        "are, refuted when any is.")


def _number(x: float) -> str:
    return "nan" if x is None or math.isnan(x) else f"{x:+.4g}"


def effect_text(check: Verdict) -> str:
    """The measured effect of a check and its interval, in one phrase."""
    if check.test == "within":
        loss, low, high = check.loss
        return f"loss {_number(loss)} [{_number(low)}, {_number(high)}], margin {check.margin:g}"
    text = f"Δ {_number(check.effect)} [{_number(check.low)}, {_number(check.high)}]"
    if check.margin is not None and check.test in ("at_most", "equivalent"):
        text += f", margin {check.margin:.3g}"
    return text


def seeds_text(check: Verdict) -> str:
    return f"{check.n_a}" if "constant" in check.b or check.a == check.b else f"{check.n_a} vs {check.n_b}"


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
        rows.append([claim.id, claim.statement, effect, seeds, f"**{result.verdict}**",
                     f"[figure]({link})" if link else "–"])
    return rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    escape = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _section_md(result: ClaimResult, out: Path) -> str:
    claim = result.claim
    parts = [f"## {claim.id}: {claim.statement}", "",
             f"Source: {claim.source}. Experiments: {', '.join(f'`{e}`' for e in claim.experiments)}. "
             f"Verdict: **{result.verdict}**" + (f" ({result.reason})" if result.reason else "") + "."]
    if claim.note:
        parts += ["", claim.note]
    if result.checks:
        parts += ["", "Checks:", ""]
        parts += [f"- {c.label}: **{v.verdict}**. {v.description}" for c, v in zip(claim.checks, result.checks)]
    if result.table is not None:
        table = result.table.reset_index().rename(columns={"label": "runs"})
        parts += ["", "Mean ± half-width of the 95% interval over seeds (number of seeds):", "",
                  markdown_table(table)]
    link = _figure_link(result, out)
    if link:
        parts += ["", f"![{claim.id}]({link})"]
    return "\n".join(parts)


def write_markdown(results: list[ClaimResult], out: Path, header: str) -> Path:
    claims = [r for r in results if r.claim.kind == "claim"]
    protocols = [r for r in results if r.claim.kind == "protocol"]
    text = [f"# Claims report\n\n{header}\n\n{RULE}\n",
            _md_table(["claim", "statement", "measured effect (95% CI)", "seeds", "verdict", "figure"],
                      _summary_rows(claims, out))]
    text += ["", *[_section_md(r, out) + "\n" for r in claims]]
    if protocols:
        text += ["# Paper protocols\n", *[_section_md(r, out) + "\n" for r in protocols]]
    return atomic_write_text(out / "CLAIMS.md", "\n".join(text))


def _image(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,{data}">'


def write_html(results: list[ClaimResult], out: Path, header: str) -> Path:
    e = html.escape
    claims = [r for r in results if r.claim.kind == "claim"]
    rows = []
    for result, (claim_id, statement, effect, seeds, _, _) in zip(claims, _summary_rows(claims, out)):
        cells = [e(claim_id), e(statement), e(effect), e(seeds), f'<b class="{e(result.verdict)}">{e(result.verdict)}</b>',
                 f'<a href="#{e(claim_id)}">figure</a>' if result.figures else "–"]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    rows = "".join(rows)
    sections = []
    for result in results:
        claim = result.claim
        body = [f'<h2 id="{e(claim.id)}">{e(claim.id)}: {e(claim.statement)}</h2>',
                f"<p>Source: {e(claim.source)}. Experiments: {e(', '.join(claim.experiments))}. "
                f"Verdict: <b class=\"{e(result.verdict)}\">{e(result.verdict)}</b>"
                + (f" ({e(result.reason)})" if result.reason else "") + ".</p>"]
        if claim.note:
            body.append(f"<p>{e(claim.note)}</p>")
        if result.checks:
            body.append("<ul>" + "".join(f"<li>{e(c.label)}: <b>{e(v.verdict)}</b>. {e(v.description)}</li>"
                                         for c, v in zip(claim.checks, result.checks)) + "</ul>")
        if result.table is not None:
            body.append(result.table.to_html(escape=True, border=0, classes="numbers"))
        body += [_image(p) for p in result.figures if Path(p).suffix == ".png"]
        sections.append("<section>" + "".join(body) + "</section>")
    style = ("body{font-family:sans-serif;max-width:70em;margin:auto;padding:1em}table{border-collapse:collapse}"
             "td,th{border-bottom:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
             ".supported{color:#176117}.refuted{color:#a31515}.inconclusive{color:#8a6d00}img{max-width:100%}")
    page = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>sparsebench claims</title>"
            f"<style>{style}</style></head><body><h1>Claims report</h1><p>{e(header)}</p><p>{e(RULE)}</p>"
            f"<table><tr><th>claim</th><th>statement</th><th>measured effect (95% CI)</th><th>seeds</th>"
            f"<th>verdict</th><th>figure</th></tr>{rows}</table>{''.join(sections)}</body></html>")
    return atomic_write_text(out / "claims.html", page)


def write_json(results: list[ClaimResult], out: Path, header: dict) -> Path:
    data = {**header, "claims": [
        {"id": r.claim.id, "kind": r.claim.kind, "statement": r.claim.statement, "verdict": r.verdict,
         "reason": r.reason, "runs": r.runs, "figures": [str(Path(p).relative_to(out)) for p in r.figures],
         "checks": [{"label": c.label, **v.as_dict()} for c, v in zip(r.claim.checks, r.checks)]}
        for r in results]}
    return atomic_write_text(out / "claims.json", json.dumps(data, indent=1, default=str) + "\n")
