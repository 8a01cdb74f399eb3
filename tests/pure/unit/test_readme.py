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
