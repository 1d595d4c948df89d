from django.urls import path

from chain import api

urlpatterns = [
    path("operations", api.OperationListApi.as_view(), name="api-operations"),
    path("operations/<int:operation_id>", api.OperationDetailApi.as_view(), name="api-operation"),
    path(
        "operations/<int:operation_id>/options",
        api.OperationOptionsApi.as_view(),
        name="api-operation-options",
    ),
    path(
        "operations/<int:operation_id>/sign",
        api.OperationSignApi.as_view(),
        name="api-operation-sign",
    ),
    path(
        "operations/<int:operation_id>/retry",
        api.OperationRetryApi.as_view(),
        name="api-operation-retry",
    ),
]
