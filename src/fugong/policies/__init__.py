"""Relief measures as code: the pure engine (``policies.engine``), the packs, and in the
platform the enterprises' facts per period, eligibility, claims, review and payout."""

from fugong.policies.models import (
    CLAIM_STATUSES,
    Claim,
    ClaimDocument,
    EnterpriseFacts,
    ParameterValue,
)

__all__ = ["CLAIM_STATUSES", "Claim", "ClaimDocument", "EnterpriseFacts", "ParameterValue"]
