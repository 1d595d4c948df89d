"""`{% sri %}`: the integrity hash of a static file, as the browser computes it."""

import base64
import hashlib
from pathlib import Path

import pytest
from django.template import Context, Template, TemplateSyntaxError

STATIC = Path(__file__).resolve().parents[2] / "static"


def test_the_hash_is_the_files_sha384() -> None:
    rendered = Template("{% load sri %}{% sri 'js/console.js' %}").render(Context())
    expected = hashlib.sha384((STATIC / "js" / "console.js").read_bytes()).digest()
    assert rendered == "sha384-" + base64.b64encode(expected).decode()


def test_an_unknown_file_is_a_template_error() -> None:
    with pytest.raises(TemplateSyntaxError, match="no static file"):
        Template("{% load sri %}{% sri 'js/nope.js' %}").render(Context())


@pytest.mark.django_db
def test_console_scripts_carry_their_hash(client: object) -> None:
    from django.test import Client

    from accounts.models import User

    assert isinstance(client, Client)
    client.force_login(User.objects.create_user("opal", is_staff=True))
    page = client.get("/console/").content.decode()
    assert 'src="/static/js/console.js" integrity="sha384-' in page
