"""README.md stays true: its OS-parameter table is the declarations' table."""

from osdef.ganeti import params
from osdef.paths import data_root


def test_readme_parameter_table_matches_declarations():
    text = (data_root() / "README.md").read_text()
    begin = text.index("<!-- BEGIN PARAMS")
    begin = text.index("\n", begin) + 1
    end = text.index("<!-- END PARAMS -->")
    assert text[begin:end] == params.markdown_table(), "run: osdef params --markdown and paste it into README.md"


def test_readme_names_the_two_commands():
    text = (data_root() / "README.md").read_text()
    assert "make test" in text and "make demo" in text


def test_hooks_readme_step_table_is_made_from_the_steps():
    from osdef.create import steps

    text = (data_root() / "hooks" / "README.md").read_text()
    begin = text.index("<!-- BEGIN STEPS")
    begin = text.index("\n", begin) + 1
    end = text.index("<!-- END STEPS -->")
    assert text[begin:end] == steps.markdown_table(), "run: osdef steps --markdown and paste it into hooks/README.md"


def test_readme_layout_names_every_package_and_nothing_else():
    root = data_root()
    text = (root / "README.md").read_text()
    layout = text[text.index("## Layout"):]
    layout = layout[layout.index("```") + 3:]
    layout = layout[:layout.index("```")]
    named = {line.split()[0] for line in layout.splitlines() if line.startswith("osdef/") and line.split()[0].endswith("/")}
    packages = {f"osdef/{p.name}/" for p in (root / "osdef").iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert named == packages


def test_docs_index_lists_every_document_and_each_link_resolves():
    import re

    docs = data_root() / "docs"
    index = (docs / "README.md").read_text()
    links = set(re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", index))
    assert all((docs / link).is_file() for link in links), links
    assert {p.name for p in docs.glob("*.md")} - {"README.md"} <= links
