"""The shared form macro: ARIA attributes only where they mean something."""

from flask import render_template_string
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired

TEMPLATE = ('{% from "_macros.html" import field %}'
            '{{ field(form.plain) }}{{ field(form.hinted, placeholder="например") }}')


class _Form(FlaskForm):
    plain = StringField("Название", validators=[DataRequired()])
    hinted = StringField("Код", description="Латиница и цифры", validators=[DataRequired()])


def _inputs(html: str) -> dict[str, str]:
    return {name: html.split(f'id="{name}"')[0].rsplit("<input", 1)[1] + html.split(
        f'id="{name}"')[1].split(">")[0] for name in ("plain", "hinted")}


def test_valid_fields_have_no_aria_invalid(app):
    with app.test_request_context(method="POST", data={"plain": "a", "hinted": "b"}):
        form = _Form()
        assert form.validate()
        inputs = _inputs(render_template_string(TEMPLATE, form=form))
    assert "aria-invalid" not in inputs["plain"] and "aria-invalid" not in inputs["hinted"]
    assert "None" not in inputs["hinted"]
    assert 'aria-describedby="hinted-hint"' in inputs["hinted"]
    assert 'placeholder="например"' in inputs["hinted"]
    assert "aria-describedby" not in inputs["plain"]


def test_fields_with_errors_are_marked_invalid(app):
    with app.test_request_context(method="POST", data={"plain": "", "hinted": ""}):
        form = _Form()
        assert not form.validate()
        html = render_template_string(TEMPLATE, form=form)
    inputs = _inputs(html)
    assert 'aria-invalid="true"' in inputs["plain"] and 'aria-invalid="true"' in inputs["hinted"]
    assert 'aria-describedby="plain-error"' in inputs["plain"]
    assert 'aria-describedby="hinted-error hinted-hint"' in inputs["hinted"]
    assert 'id="plain-error"' in html
