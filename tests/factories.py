import factory
from django.contrib.auth import get_user_model

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
