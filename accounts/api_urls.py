from django.urls import path

from accounts import api

urlpatterns = [
    path("auth/logout", api.LogoutApi.as_view(), name="api-logout"),
    path("me/activity", api.ActivityApi.as_view(), name="api-me-activity"),
    path("operations", api.OperationListApi.as_view(), name="api-operations"),
    path("operations/<int:operation_id>", api.OperationDetailApi.as_view(), name="api-operation"),
    path("me/signins", api.SignInListApi.as_view(), name="api-me-signins"),
    path("me/signins/end-others", api.SignOutOthersApi.as_view(), name="api-me-signins-end-others"),
    path("me/signins/<int:signin_id>", api.SignInDetailApi.as_view(), name="api-me-signin"),
]
