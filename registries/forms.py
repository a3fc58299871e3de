from django import forms

from registries.models import COMMENT_MAX, Registry


class PromoteForm(forms.Form):
    target = forms.ModelChoiceField(
        queryset=Registry.objects.none(), empty_label=None, label="Promote to"
    )
    comment = forms.CharField(
        required=False,
        max_length=COMMENT_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Why? e.g. Ready for testing"}),
    )

    def __init__(self, *args, targets, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].queryset = Registry.objects.filter(pk__in=[t.pk for t in targets])
        if targets and all(t.require_comment for t in targets):
            # Said up front; promotion_request is the one place that enforces it.
            self.fields[
                "comment"
            ].help_text = (
                f"Required: {', '.join(t.name for t in targets)} asks why for every promotion."
            )
            self.fields["comment"].widget.attrs["aria-required"] = "true"


class RegistryForm(forms.ModelForm):
    class Meta:
        model = Registry
        fields = [
            "name",
            "description",
            "usage_type",
            "promote_to",
            "require_comment",
            "active",
            "endpoint",
            "namespace",
            "username",
            "password",
        ]
        widgets = {
            # A stored password is never sent back to the browser; empty keeps it.
            "password": forms.PasswordInput(render_value=False),
            "description": forms.Textarea(attrs={"rows": 3}),
        }
        labels = {"promote_to": "Promote To Feed", "usage_type": "Usage type"}
        help_texts = {
            "usage_type": "Validated/Promoted registries accept content only by promotion.",
            "promote_to": "When set, images in this registry can be promoted only there.",
        }

    def __init__(self, *args, can_change_connection: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["password"] = ""
        self.fields["password"].required = False
        self.fields["password"].help_text = (
            "Leave empty to keep the stored password. It is never shown again."
            if self.instance.pk and self.instance.password
            else ""
        )
        if not can_change_connection:
            # Where the portal connects and with which credentials: Administer only.
            for field in ("endpoint", "namespace", "username", "password"):
                self.fields[field].disabled = True
            self.fields["endpoint"].help_text = "Only administrators change the connection."
        others = Registry.objects.all()
        if self.instance.pk:
            others = others.exclude(pk=self.instance.pk)
            # The usage type is chosen at creation.
            self.fields["usage_type"].disabled = True
            self.fields["name"].disabled = True
        self.fields["promote_to"].queryset = others
        self.fields["promote_to"].required = False


class BatchForm(forms.Form):
    """Promote selected: the target, a tag pattern for whole repositories, the comment."""

    target = forms.ModelChoiceField(
        queryset=Registry.objects.none(), empty_label=None, label="Promote to"
    )
    tags = forms.CharField(
        required=False,
        max_length=1000,
        label="Tags",
        help_text="Names or patterns, separated by spaces or commas, e.g. 4.2.* — empty: "
        "every tag of the selected repositories.",
    )
    comment = forms.CharField(
        required=False,
        max_length=COMMENT_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Why? e.g. Release 4.2"}),
    )

    def __init__(self, *args, targets, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].queryset = Registry.objects.filter(pk__in=[t.pk for t in targets])
        if len(targets) == 1:
            self.fields["target"].initial = targets[0].pk

    def tag_list(self) -> list[str]:
        return [t for t in self.cleaned_data.get("tags", "").replace(",", " ").split() if t]
