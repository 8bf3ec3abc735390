"""Account managers' desk: survey campaigns, needs with response times, meetings and visits."""

from fugong.desk.models import Campaign, CampaignTarget, Meeting, Need, NeedEvent

__all__ = ["Campaign", "CampaignTarget", "Meeting", "Need", "NeedEvent"]
