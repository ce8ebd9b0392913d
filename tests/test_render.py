"""Templates and the escaping of every host."""

from __future__ import annotations

import pytest

from tokline.prompt import template as render
from tokline.prompt.fields import KNOWN_FIELDS

VALUES: dict[str, render.Value | None] = {
    "today.cost": ("$4.21", None), "block.pct": ("85%", render.WARN),
    "quota.7d": ("97%", render.CRIT), "block.left": None, "x": ("50% #1 $HOME `id` \\", None),
}


def out(template: str, target: str, color: bool = True) -> str:
    return render.render(render.parse_template(template), VALUES, target, color)


def test_groups_drop_with_an_empty_field() -> None:
    assert out("{today.cost}[ · {block.left} left][ · 7d {quota.7d}]", "plain") \
        == "$4.21 · 7d 97%"


def test_literal_braces_and_brackets() -> None:
    assert out("{{x}} \\[{today.cost}\\]", "plain") == "{x} [$4.21]"


@pytest.mark.parametrize(("target", "expected"), [
    ("plain", "50% #1 $HOME `id` \\ 85%"),
    ("ansi", "50% #1 $HOME `id` \\ \033[33m85%\033[0m"),
    ("fish", "50% #1 $HOME `id` \\ \033[33m85%\033[0m"),
    ("zsh", "50%% #1 $HOME `id` \\ %F{yellow}85%%%f"),
    ("bash", "50% #1 $HOME `id` \\ \001\033[33m\00285%\001\033[0m\002"),
    ("tmux", "50% ##1 $HOME `id` \\ #[fg=yellow]85%#[default]"),
])
def test_each_target_escapes_its_own_specials(target: str, expected: str) -> None:
    assert out("{x} {block.pct}", target) == expected


def test_critical_is_red_and_no_color_is_plain() -> None:
    assert out("{quota.7d}", "tmux") == "#[fg=red]97%#[default]"
    assert out("{quota.7d}", "zsh", color=False) == "97%%"  # zsh prompt escaping stays


@pytest.mark.parametrize(("template", "message"), [
    ("{today.cost", "unclosed '{'"), ("{}", "empty field"), ("a } b", "unmatched '}'"),
    ("[{today.cost}", "unclosed '['"), ("x]", "unmatched ']'"),
])
def test_syntax_errors_say_where(template: str, message: str) -> None:
    with pytest.raises(render.TemplateError, match=message.replace("[", r"\[")):
        render.parse_template(template)


def test_unknown_field_is_named() -> None:
    parts = render.parse_template("{today.cost} {today.costs}")
    with pytest.raises(render.TemplateError, match=r"unknown field 'today\.costs'"):
        render.check_fields(parts, KNOWN_FIELDS)
    render.check_fields(render.parse_template("{quota.codex.5h} {source.claude.today}"),
                        KNOWN_FIELDS)


def test_presets_parse_and_use_known_fields() -> None:
    for name in render.PRESETS:
        render.check_fields(render.parse_template(name), KNOWN_FIELDS)


def test_unknown_target() -> None:
    with pytest.raises(render.TemplateError, match="unknown target"):
        out("{today.cost}", "powershell")


def test_fastjson_agrees_with_json() -> None:
    import json

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tokline.prompt import lightjson

    values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(), lambda inner: st.lists(inner, max_size=4)
        | st.dictionaries(st.text(), inner, max_size=4), max_leaves=12)

    @settings(max_examples=300, deadline=None)
    @given(values)
    def roundtrip(value: object) -> None:
        assert lightjson.loads(lightjson.dumps(value)) == json.loads(json.dumps(value))
        assert lightjson.loads(json.dumps(value)) == value

    roundtrip()
    for bad in ("", "{", "[1,]", "{} {}", "NaN", "01"):
        with pytest.raises(ValueError):
            lightjson.loads(bad)
