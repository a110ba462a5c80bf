from __future__ import annotations

import factory

from interactions import services
from interactions.models import ApiClient, Feedback, Interaction


class ApiClientFactory(factory.django.DjangoModelFactory):
    """Creates a client through the service, so its key is real; the raw key is on `.raw_key`."""

    class Meta:
        model = ApiClient

    name = factory.Sequence(lambda n: f"client-{n}")
    scopes = ["ingest", "read"]

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        client, key = services.api_client_create(name=kwargs["name"], scopes=kwargs["scopes"])
        client.raw_key = key
        return client


class InteractionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Interaction

    client = factory.SubFactory(ApiClientFactory)
    task = "default"
    input_text = factory.Sequence(lambda n: f"question {n}")
    messages = factory.LazyAttribute(lambda o: [{"role": "user", "content": o.input_text}])
    output_text = "an answer"


class FeedbackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feedback

    interaction = factory.SubFactory(InteractionFactory)
    kind = "score"
    score = 5
