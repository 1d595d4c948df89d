from django.db import models


class Deployment(models.Model):
    """Where one of the portal's contracts lives on one chain (written by `deploycontracts`)."""

    chain_id = models.PositiveBigIntegerField()
    name = models.CharField(max_length=64)
    address = models.CharField(max_length=42)
    # keccak256 of the runtime code found at `address` when recorded: a reset chain is noticed.
    code_hash = models.CharField(max_length=66)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["chain_id", "name"], name="chain_deployment_unique_name"
            )
        ]
        ordering = ["chain_id", "name"]

    def __str__(self) -> str:
        return f"{self.name}@{self.chain_id}: {self.address}"
