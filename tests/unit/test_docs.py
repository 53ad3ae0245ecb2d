"""The docs that are generated or promised stay true, and the repository's docs stand alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import seedgrpo.algorithms as algorithms
from seedgrpo.config.reference import render_reference

from ..conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"
README = REPO_ROOT / "README.md"
README_MAX_LINES = 220  # the front page fits on two screens; the rest lives in docs/

# where files outside the repository used to be cited; built here so this file does not match
FORBIDDEN = ("STACK" + "_NOTES", "shared" + "/docs")
SCANNED = ("platform", "tests", "docs", "experiments", "bench", "docker", "Makefile",
           "README.md")
_SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def _markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _relative_links(text: str) -> list[tuple[str, str]]:
    """(file, anchor) of every link of a Markdown text that points into the repository (no
    scheme); a bare ``#anchor`` has the file ``""`` (the text itself).

    >>> _relative_links("[a](docs/X.md#top), ![p](img.png), [w](https://x.org), [s](#here)")
    [('docs/X.md', 'top'), ('img.png', ''), ('', 'here')]
    """
    targets = [a or b for a, b in _LINK.findall(text)]
    return [tuple(t.split("#", 1)) if "#" in t else (t, "") for t in targets
            if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def _anchors(markdown: str) -> set[str]:
    r"""The anchors GitHub gives a Markdown file's headings (lower case, punctuation dropped,
    spaces as hyphens).

    >>> sorted(_anchors("# Top\n## Running a sweep: `seedgrpo-sweep`\n"))
    ['running-a-sweep-seedgrpo-sweep', 'top']
    """
    headings = re.findall(r"^#{1,6} (.+?)\s*$", markdown, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def _text_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return [p for p in sorted(root.rglob("*")) if p.is_file()
            and not any(part in _SKIPPED_DIRS or part.endswith(".egg-info")
                        for part in p.relative_to(REPO_ROOT).parts)]


def test_config_reference_is_up_to_date() -> None:
    current = (DOCS / "CONFIG.md").read_text()
    assert current == render_reference(), "docs/CONFIG.md is stale: run `make docs`"


def test_every_config_key_is_in_the_reference() -> None:
    from seedgrpo.config import ExperimentConfig

    text = render_reference()
    for section, model in ExperimentConfig.model_fields.items():
        annotation = model.annotation
        for key in getattr(annotation, "model_fields", {}):
            assert f"`{section}.{key}`" in text


def test_the_algorithm_notes_list_the_library_api() -> None:
    notes = (DOCS / "ALGORITHMS.md").read_text()
    names = set(re.findall(r"`(\w+)\(", notes))
    public = set(algorithms.__all__) | {"math_reward"}
    documented = names & public
    assert {"extract_answer", "cluster_answers", "semantic_entropy", "modulate",
            "group_advantages", "seed_grpo_advantages", "policy_loss", "math_reward",
            "gcpo_uncertainty", "register_uncertainty", "register_modulation"} <= documented
    for name in documented - {"math_reward"}:
        assert hasattr(algorithms, name)


def test_readme_quick_start_commands_are_the_makefile_targets() -> None:
    readme = README.read_text()
    assert "make demo" in readme and "make test" in readme
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^demo: setup$", makefile, re.MULTILINE)
    assert re.search(r"^test: setup$", makefile, re.MULTILINE)
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE), "CI must run the README's test command"


def test_readme_is_a_front_page() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move details to docs/")


def test_readme_names_every_console_script() -> None:
    """The front page's command table covers every script pyproject.toml installs."""
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    block = pyproject.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    scripts = re.findall(r"^([\w-]+)\s*=", block, re.MULTILINE)
    assert scripts, "no [project.scripts] in pyproject.toml"
    readme = README.read_text()
    for script in scripts:
        assert f"| `{script}` |" in readme, f"README.md's command table misses {script}"


def test_readme_shows_the_mlflow_comparison() -> None:
    """The screenshot and the two links a sweep prints stay on the front page."""
    readme = README.read_text()
    section = readme.split("## Comparing trials in MLflow", 1)[1].split("\n## ", 1)[0]
    assert "](docs/images/mlflow_compare.png)" in section
    assert "**the trials**" in section and "**the compare page**" in section
    assert "--ui" in section


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: p.name)
def test_relative_links_resolve_inside_the_repository(path: Path) -> None:
    broken = []
    for target, anchor in _relative_links(path.read_text()):
        resolved = (path.parent / target).resolve() if target else path
        if not resolved.is_relative_to(REPO_ROOT.resolve()) or not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved.read_text()):
            broken.append(f"{target}#{anchor}")
    assert not broken, f"{path.relative_to(REPO_ROOT)} has broken links: {broken}"


def test_nothing_cites_files_outside_the_repository() -> None:
    hits = []
    for name in SCANNED:
        for path in _text_files(REPO_ROOT / name):
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # images and other binary files
            for forbidden in FORBIDDEN:
                if forbidden in text:
                    line = text[: text.index(forbidden)].count("\n") + 1
                    hits.append(f"{path.relative_to(REPO_ROOT)}:{line}: {forbidden}")
    assert not hits, ("these cite notes outside the repository; cite docs/ (e.g. "
                      "docs/PLATFORM_NOTES.md) or state the fact:\n" + "\n".join(hits))


@pytest.mark.parametrize(("doc", "sections"), [
    ("ARCHITECTURE.md", ["Layers", "One training step", "Metric names", "Conventions",
                         "Extending", "An uncertainty source", "A modulation function",
                         "An advantage estimator", "An engine", "A benchmark"]),
    ("PLATFORM_NOTES.md", ["Installing", "math-verify", "Engines on CPU",
                           "Reward signal on small models", "Ray on a shared machine"]),
])
def test_docs_keep_the_sections_the_code_cites(doc: str, sections: list[str]) -> None:
    """Docstrings cite these sections by title (docs/ARCHITECTURE.md, "Metric names")."""
    headings = re.findall(r"^#{2,3} (.+)$", (DOCS / doc).read_text(), re.MULTILINE)
    assert [s for s in sections if s not in headings] == []


def test_the_algorithm_notes_keep_their_numbered_sections() -> None:
    """Docstrings cite docs/ALGORITHMS.md by section number."""
    headings = re.findall(r"^## (\d+)\. ", (DOCS / "ALGORITHMS.md").read_text(), re.MULTILINE)
    assert headings[:7] == [str(n) for n in range(1, 8)]


def test_every_training_metric_is_documented() -> None:
    from seedgrpo.runtime.metrics import TRAIN_METRICS

    architecture = (DOCS / "ARCHITECTURE.md").read_text()
    table = architecture.split("## Metric names", 1)[1].split("\n## ", 1)[0]
    missing = [m for m in TRAIN_METRICS if f"`{m.split('/', 1)[1]}`" not in table]
    assert not missing, f"docs/ARCHITECTURE.md's metric table misses {missing}"
