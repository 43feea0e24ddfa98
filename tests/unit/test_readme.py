"""The README's two set-up commands stay true: CI runs exactly its test command."""

from pathlib import Path

ROOT = Path(__file__).parents[2]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands():
    assert (ROOT / "README.md").read_text().index("```sh") < 20
    run, test = readme_commands()
    venv = "python3 -m venv .venv && . .venv/bin/activate && "
    assert run.startswith(venv + "pip install . &&") and "fastds run" in run and "127.0.0.1" in run
    assert test.startswith("bash tests/machine.sh && " + venv) and "pytest" in test  # the whole set-up, alone


def test_readme_points_at_the_architecture_in_the_repository():
    text = (ROOT / "README.md").read_text()
    assert "../shared" not in text and "(docs/architecture.md)" in text and (ROOT / "docs" / "architecture.md").is_file()


def test_ci_runs_the_readme_test_command():
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert readme_commands()[1] in ci_lines
