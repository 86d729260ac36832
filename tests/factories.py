import json
from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from access.models import ManagedPolicy
from fleet import codes
from web.models import SystemCheck

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password(PASSWORD)


class SystemCheckFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SystemCheck

    requested_by = factory.SubFactory(UserFactory)


# --- Fleet ----------------------------------------------------------------------------------


class ActivationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "fleet.Activation"

    id = factory.LazyFunction(codes.new_activation_id)
    code_hash = factory.LazyFunction(lambda: codes.activation_code_hash("not-a-real-code"))
    registration_limit = 10
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=24))


class ManagedNodeFactory(factory.django.DjangoModelFactory):
    """A registered node; `tags={"Env": "dev"}` adds its tags."""

    class Meta:
        model = "fleet.ManagedNode"
        skip_postgeneration_save = True

    id = factory.LazyFunction(codes.new_node_id)
    name = factory.Sequence(lambda n: f"node-{n:04d}")
    status = "Online"
    status_changed_at = factory.LazyFunction(timezone.now)
    registered_at = factory.LazyFunction(timezone.now)
    last_seen_at = factory.LazyFunction(timezone.now)
    key_rotated_at = factory.LazyFunction(timezone.now)
    public_key = "A" * 43 + "="
    fingerprint = factory.Sequence(lambda n: f"{n:032x}")
    hostname = factory.LazyAttribute(lambda node: node.name)
    platform_type = "Linux"
    platform_name = "Debian GNU/Linux"
    platform_version = "12"
    architecture = "x86_64"
    ip_address = factory.Sequence(lambda n: f"10.0.{n // 250}.{n % 250 + 1}")
    agent_version = "0.1.0"

    @factory.post_generation
    def tags(self, create, extracted, **kwargs):
        if create and extracted:
            for key, value in extracted.items():
                NodeTagFactory(node=self, key=key, value=value)


class NodeTagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "fleet.NodeTag"

    node = factory.SubFactory(ManagedNodeFactory)
    key = "Env"
    value = "dev"


class ResourceGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "fleet.ResourceGroup"

    name = factory.Sequence(lambda n: f"group-{n}")
    query = factory.LazyFunction(lambda: {"TagFilters": [{"Key": "Env", "Values": ["dev"]}]})


def user_with_policy(username: str, document: dict) -> object:
    """A user with one managed policy of their own, holding `document`."""
    user = UserFactory(username=username)
    policy = ManagedPolicy.objects.create(name=f"{username}-policy", document=json.dumps(document))
    policy.users.add(user)
    return user
