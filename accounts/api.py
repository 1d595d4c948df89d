from typing import cast

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.services import revoke_token
from portal.client_info import ClientInfo


class LogoutApi(APIView):
    @extend_schema(request=None, responses={204: None}, operation_id="logout")
    def post(self, request: Request) -> Response:
        revoke_token(token=request.auth, client=ClientInfo.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    class OutputSerializer(serializers.ModelSerializer[User]):
        class Meta:
            model = User
            fields = ["id", "username", "display_name", "email", "date_joined"]

    @extend_schema(responses={200: OutputSerializer}, operation_id="me")
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(cast(User, request.user)).data)
