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


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/login", "/signup", "/account", "/account/passkeys"])
def test_every_script_and_stylesheet_of_a_page_carries_its_files_hash(path: str) -> None:
    import re

    from django.test import Client

    from accounts.models import User

    client = Client()
    client.force_login(User.objects.create_user("pearl"))
    if path in ("/login", "/signup"):
        client.logout()
    page = client.get(path).content.decode()
    assets = re.findall(r'<(?:script|link)[^>]*(?:src|href)="/static/([^"]+)"[^>]*>', page)
    assert any(asset.endswith(".js") for asset in assets) or path == "/account"
    for tag in re.findall(
        r'<(?:script[^>]*src|link rel="stylesheet"[^>]*href)="/static/[^>]*>', page
    ):
        asset = re.search(r'(?:src|href)="/static/([^"]+)"', tag)
        assert asset is not None
        digest = hashlib.sha384((STATIC / asset.group(1)).read_bytes()).digest()
        assert f'integrity="sha384-{base64.b64encode(digest).decode()}"' in tag, tag
