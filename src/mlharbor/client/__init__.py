"""The REST client: one more backend of the same service interfaces, over ``mlharbor server``."""

from mlharbor.client.access import RestAccess
from mlharbor.client.features import RestFunctions, RestOnline
from mlharbor.client.http import RestClient
from mlharbor.client.jobs import RestJobs
from mlharbor.client.models import RestModels, RestWebhooks
from mlharbor.client.tables import RestTables

__all__ = [
    "RestAccess", "RestClient", "RestFunctions", "RestJobs", "RestModels", "RestOnline", "RestTables", "RestWebhooks",
]
