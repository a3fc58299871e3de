"""Forms of the policy, approval and webhook pages; they only turn input into plain values."""

from __future__ import annotations

from django import forms

from registries.models import COMMENT_MAX, LABEL_RULES_MAX, Registry, WebhookEvent


class PolicyForm(forms.Form):
    approvals_required = forms.IntegerField(
        min_value=0,
        max_value=20,
        initial=0,
        label="Approvals",
        help_text="People holding Approve Promotions here who must approve each promotion "
        "(never the person asking). 0: none.",
    )
    soak_hours = forms.DecimalField(
        min_value=0,
        max_value=365 * 24,
        decimal_places=2,
        initial=0,
        label="Soak time (hours)",
        help_text="How long the image must have been in the source registry (pushed or "
        "promoted there) first. 0: none.",
    )
    require_signature = forms.BooleanField(
        required=False,
        label="Signed",
        help_text="A cosign signature (sha256-….sig) or a signature referrer in the source.",
    )
    signature_identity = forms.CharField(
        required=False,
        max_length=255,
        label="Signed by",
        help_text="Optional key identity the signature must name (an annotation value, a "
        "certificate's e-mail or URI).",
    )
    required_labels = forms.CharField(
        required=False,
        label="Required labels or annotations",
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text=f"One a line (at most {LABEL_RULES_MAX}): a key that must be present, e.g. "
        "org.opencontainers.image.revision, or key ~ pattern (a regular expression the "
        "whole value must match).",
    )
    immutable_tags = forms.BooleanField(
        required=False,
        label="Immutable tags",
        help_text="A tag that exists here moves to another digest (promotion or roll back) "
        "only for people holding Overwrite Tags.",
    )
    approval_ttl_hours = forms.DecimalField(
        min_value=0.02,
        max_value=365 * 24,
        decimal_places=2,
        initial=168,
        label="Requests expire after (hours)",
    )


class DecisionForm(forms.Form):
    comment = forms.CharField(
        required=False, max_length=COMMENT_MAX, widget=forms.Textarea(attrs={"rows": 2})
    )


class WebhookForm(forms.Form):
    name = forms.CharField(max_length=100)
    url = forms.URLField(max_length=2000, label="Payload URL", assume_scheme="https")
    registry = forms.ModelChoiceField(
        queryset=Registry.objects.none(),
        required=False,
        empty_label="All registries",
        label="Registry",
        help_text="Events of this registry only; all registries needs Administer.",
    )
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[e.value for e in WebhookEvent],
    )
    active = forms.BooleanField(required=False, initial=True)
    new_secret = forms.BooleanField(
        required=False,
        label="Set a new secret",
        help_text="A new signing secret is generated and shown once.",
    )

    def __init__(self, *args, registries, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["registry"].queryset = Registry.objects.filter(
            pk__in=[r.pk for r in registries]
        )
        if editing:
            self.fields["registry"].disabled = True
        else:
            del self.fields["new_secret"]
