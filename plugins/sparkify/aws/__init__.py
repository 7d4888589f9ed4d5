"""The AWS side of the pipeline as code, for the ``sparkify_setup`` and ``sparkify_teardown`` DAGs.

One concern per module; the domain functions take boto3 clients, so the same code runs against
AWS, against moto's server, and against a botocore ``Stubber``:

- :mod:`~sparkify.aws.settings`: the DAGs' params, validated (``SetupSettings``);
- :mod:`~sparkify.aws.names`: the name patterns AWS accepts (regions, clusters, roles…);
- :mod:`~sparkify.aws.clients`: boto3 clients from the provider's hooks, one retry policy;
- :mod:`~sparkify.aws.errors`: error codes, throttling, the setup's errors;
- :mod:`~sparkify.aws.tags`: the ``sparkify-created-by`` tag;
- :mod:`~sparkify.aws.polling`: waiting where the provider has no waiter;
- :mod:`~sparkify.aws.iam`, :mod:`~sparkify.aws.bucket`, :mod:`~sparkify.aws.secrets`,
  :mod:`~sparkify.aws.cluster`, :mod:`~sparkify.aws.serverless`, :mod:`~sparkify.aws.connections`:
  the role, the manifest bucket, the secrets, the provisioned cluster, Redshift Serverless, and
  the Airflow connections the pipeline uses.

The operators and the sensor built on the provider's are in :mod:`sparkify.operators.redshift_cluster`.

Everything the setup creates carries the tag ``sparkify-created-by=sparkify_setup``. The setup
reuses what already exists under the configured names; the teardown deletes only what carries
the tag, and refuses to touch a warehouse that does not. Nothing is imported here, so that
``sparkify.aws.names`` stays cheap for the ETL's operators.
"""
