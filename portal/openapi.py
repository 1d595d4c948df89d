from typing import Any, Literal

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.openapi import AutoSchema


class PortalSessionScheme(SessionScheme):
    """The session cookie, as the portal's session authentication takes it."""

    target_class = "portal.authentication.PortalSessionAuthentication"


class PortalAutoSchema(AutoSchema):
    """Name a view's nested serializers after the view: `RegisterVerifyApi.InputSerializer`
    becomes `RegisterVerifyInput`, so that every API view can use the same nested names."""

    def get_serializer_name(
        self, serializer: Any, direction: Literal["request", "response"]
    ) -> str:
        qualified = type(serializer).__qualname__
        if "." not in qualified:
            return str(super().get_serializer_name(serializer, direction))
        owner, name = qualified.rsplit(".", 1)
        return owner.removesuffix("Api") + name.removesuffix("Serializer")
