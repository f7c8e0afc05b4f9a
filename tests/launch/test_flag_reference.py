"""The docs stay true: docs/flags.md matches the flag definitions, every relative link of README.md
and docs/*.md reaches a file (and a heading there), and the README stays short."""

from __future__ import annotations

import difflib
import os
import pathlib
import re
import sys

import pytest

from launch import flag_reference

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
REGENERATE = "python -m launch.flag_reference --output=docs/flags.md"

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: markup dropped, lower case, punctuation other than '-' and
    '_' dropped, spaces to '-'."""
    text = heading.replace("`", "")
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's anchor; a repeated one gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(text):
        match = _HEADING.match(line)
        if match:
            base = github_anchor(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(text: str) -> list[str]:
    """Targets of the inline and reference links that are not URLs (code left out)."""
    targets = []
    for line in prose_lines(text):
        line = _CODE_SPAN.sub("code", line)
        targets += _LINK.findall(line)
        reference = _REFERENCE.match(line)
        if reference:
            targets.append(reference.group(1))
    return [t for t in targets if t and not _SCHEME.match(t)]


def broken_links(page: pathlib.Path) -> list[str]:
    """'target: why' for every relative link of ``page`` that does not resolve."""
    problems = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            problems.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md":
            if anchor not in anchors(file.read_text(encoding="utf-8")):
                problems.append(f"{target}: no heading with anchor #{anchor} in {file.name}")
        elif anchor and not re.fullmatch(r"L\d+(-L\d+)?", anchor):
            problems.append(f"{target}: an anchor into a file that is not Markdown")
    return problems


@pytest.fixture(scope="module")
def generated() -> str:
    return flag_reference.reference_text()


def test_flags_md_is_up_to_date(generated):
    written = (ROOT / "docs" / "flags.md").read_text(encoding="utf-8")
    if written != generated:
        diff = "".join(list(difflib.unified_diff(written.splitlines(True),
                                                 generated.splitlines(True),
                                                 "docs/flags.md", "generated"))[:40])
        pytest.fail(f"docs/flags.md is out of date; regenerate it with\n    {REGENERATE}\n{diff}")


def test_reference_lists_every_launch_flag_once(generated):
    from absl import flags

    names = [f.name for module, defined in flags.FLAGS.flags_by_module_dict().items()
             if module.startswith("launch.") for f in defined]
    assert {"data_dir", "task", "threshold_quantile", "steps", "heads", "check_output"} <= {*names}
    assert flag_reference.flag_modules()[0] == "launch.flags"
    for name in names:
        assert generated.count(f"| `--{name}` |") == 1, name
    assert "logtostderr" not in generated  # absl's own flags are not ours to document


def test_shared_flags_are_grouped_by_the_section_comments(generated):
    data = generated.split("### Data\n", 1)[1].split("\n### ", 1)[0]
    assert "| `--data_dir` |" in data and "| `--mask_threshold` |" in data
    assert "| `--task` |" not in data
    localisation = generated.split("### Localisation", 1)[1].split("\n### ", 1)[0]
    assert "| `--dense_patch_size` | integer | `32` |" in localisation


def test_reference_does_not_depend_on_the_machine(generated):
    for place in {os.getcwd(), str(ROOT), os.path.expanduser("~"), sys.prefix} - {"/"}:
        assert place not in generated


def test_links_of_readme_and_docs_resolve():
    assert len(DOCS) >= 10
    problems = [f"{page.relative_to(ROOT)}: {p}" for page in PAGES for p in broken_links(page)]
    assert not problems, "\n".join(problems)


def test_each_shared_flag_is_in_the_section_of_the_first_flag_before_it():
    from launch import flags as flag_defs

    where = flag_defs.shared_sections()
    assert list(dict.fromkeys(where.values())) == [title for _, title in flag_defs.SECTIONS]
    assert where["data_dir"] == where["decode_check"] == "Data"
    assert where["tsne_perplexity"] == "Embedding plot: t-SNE (launch.tsne)"
    assert where["threshold"] == "Re-export (launch.export)" and where["tflite"] == where["threshold"]
    headings = [line for line in flag_reference.reference_text().splitlines()
                if line.startswith("### ")]
    assert headings and all(h[4].isupper() for h in headings), headings


def test_readme_is_short_and_links_every_docs_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text) < 15_000
    linked = {t.partition("#")[0] for t in relative_links(text)}
    assert {f"docs/{page.name}" for page in DOCS} <= linked


def test_anchors_follow_githubs_rule():
    assert github_anchor("Scale: accelerators, several devices, Cloud Storage") == (
        "scale-accelerators-several-devices-cloud-storage")
    assert github_anchor("EfficientNet-B4 transfer (Table 3)") == "efficientnet-b4-transfer-table-3"
    assert github_anchor("`python -m launch.benchmark`") == "python--m-launchbenchmark"
    assert github_anchor("Why the proxy task did not learn, and what changed") == (
        "why-the-proxy-task-did-not-learn-and-what-changed")
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_link_check_finds_broken_links(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## Some part\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#some-part) [ok](#page) [ok](https://example.com/x)\n"
        "[missing file](nothing.md) [missing heading](other.md#another-part)\n"
        "[missing here](#nowhere) `[in code](nothing.md)`\n\n```\n[in a fence](nothing.md)\n```\n",
        encoding="utf-8")
    problems = broken_links(page)
    assert len(problems) == 3, problems
    assert [p.split(":")[0] for p in problems] == ["nothing.md", "other.md#another-part",
                                                   "#nowhere"]
