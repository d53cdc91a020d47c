"""The names and tags of every resource a stage owns (contract shared with scarab serve)."""

from __future__ import annotations

from dataclasses import dataclass

from scarab.functions import ALL_ROUTES_NAME

TAG_APP = "scarab:app"
TAG_STAGE = "scarab:stage"
# Space-separated names of the environment variables scarab manages on the function;
# kept as a tag so a lost state record still knows which variables are scarab's.
TAG_MANAGED_ENV = "scarab:managed-env"


@dataclass(frozen=True)
class FunctionNames:
    """The names of one function's own resources: the function, its role, its log group."""

    key: str  # the catalog name (scarab.functions): analyze, models, or all
    function: str
    role: str

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function}"


@dataclass(frozen=True)
class Names:
    app: str
    stage: str

    @property
    def base(self) -> str:
        return f"{self.app}-{self.stage}"

    def function(self, key: str) -> FunctionNames:
        """Function `key`'s names: `<app>-<stage>-<key>` and `<app>-<stage>-<key>-role`.

        The all-routes function keeps the names every stage had before the split
        (`<app>-<stage>`, `<app>-<stage>-role`), so the deploy finds and retires it.
        """
        name = self.base if key == ALL_ROUTES_NAME else f"{self.base}-{key}"
        return FunctionNames(key, name, f"{name}-role")

    @property
    def legacy(self) -> FunctionNames:
        """The single function of a stage deployed before the split (retired by deploy)."""
        return self.function(ALL_ROUTES_NAME)

    @property
    def rest_api(self) -> str:
        return self.base

    @property
    def usage_plan(self) -> str:
        return f"{self.base}-plan"

    @property
    def key_prefix(self) -> str:
        return f"{self.base}-key-"

    def key(self, n: int) -> str:
        return f"{self.key_prefix}{n}"

    @property
    def ecr_repository(self) -> str:
        # Flat, not "app/stage": emulators resolve only the last path segment of an ImageUri.
        return self.base

    @property
    def inline_policy(self) -> str:
        """The role's inline policy that reads the Gemini key."""
        return "scarab-read-secret"

    @property
    def log_db_policy(self) -> str:
        """The role's inline policy that reads the prediction log's database URL."""
        return "scarab-read-prediction-db"

    @property
    def vpc_policy(self) -> str:
        """The role's inline policy that lets Lambda attach the function to its VPC."""
        return "scarab-vpc-network-interfaces"

    @property
    def logs_policy(self) -> str:
        """The role's inline policy that writes the function's logs."""
        return "scarab-write-logs"

    @property
    def permission_sid(self) -> str:
        return "scarab-apigateway-invoke"

    @property
    def alias_permission_sid(self) -> str:
        """The API's invoke permission on the `live` alias: its own id, so removing the
        unqualified one of an older deploy can never take it (emulators keep one policy
        for a function and its aliases)."""
        return "scarab-apigateway-invoke-live"

    @property
    def registry_table(self) -> str:
        """The DynamoDB table of the stage's model registry."""
        return f"{self.base}-models"

    def models_bucket(self, account_id: str, region: str) -> str:
        """The versioned, private bucket of the stage's model artifacts and data."""
        return f"{self.base}-models-{account_id}-{region}"

    @property
    def registry_policy(self) -> str:
        """The models role's inline policy that reads the registry and its artifacts."""
        return "scarab-read-registry"

    @property
    def invoke_endpoints_policy(self) -> str:
        """The models role's inline policy that invokes the SageMaker endpoints hosting
        registry models (host = "sagemaker:<endpoint>")."""
        return "scarab-invoke-endpoints"

    @property
    def cache_table(self) -> str:
        """The DynamoDB table of the stage's shared response cache."""
        return f"{self.base}-cache"

    @property
    def cache_policy(self) -> str:
        """Each role's inline policy that reads and writes the cache table."""
        return "scarab-use-cache"

    def uploads_bucket(self, account_id: str, region: str) -> str:
        """The private bucket presigned uploads go to (objects expire after a day)."""
        return f"{self.base}-uploads-{account_id}-{region}"

    @property
    def uploads_policy(self) -> str:
        """The inline policy that writes, reads and deletes upload objects."""
        return "scarab-use-uploads"

    @property
    def jobs_table(self) -> str:
        """The DynamoDB table of asynchronous jobs (and their idempotency records)."""
        return f"{self.base}-jobs"

    @property
    def jobs_dlq(self) -> str:
        """The SQS dead-letter queue of job invocations that failed after their retries."""
        return f"{self.base}-jobs-dlq"

    @property
    def jobs_policy(self) -> str:
        """The analyze role's inline policy for the jobs table, its DLQ and self-invoke."""
        return "scarab-run-jobs"

    @property
    def alarm_prefix(self) -> str:
        """What every alarm of the stage is named with: `<app>-<stage>-`."""
        return f"{self.base}-"

    @property
    def alarm_topic(self) -> str:
        """The SNS topic the stage's alarms notify."""
        return f"{self.base}-alarms"

    @property
    def budget(self) -> str:
        """The stage's AWS Budgets budget (budgets are per account, not per region)."""
        return f"{self.base}-monthly"

    @property
    def server_keys_secret(self) -> str:
        """The Secrets Manager secret holding the server's API keys (--target fargate),
        in lens.server.keys's format."""
        return f"{self.base}/fargate-api-keys"

    @property
    def cluster(self) -> str:
        """The ECS cluster of --target fargate."""
        return self.base

    @property
    def service(self) -> str:
        """The ECS service of --target fargate (in the cluster of the same name)."""
        return self.base

    @property
    def task_family(self) -> str:
        """The ECS task definition family of --target fargate's server."""
        return f"{self.base}-server"

    @property
    def service_log_group(self) -> str:
        """The log group of --target fargate's containers (awslogs)."""
        return f"/ecs/{self.base}"

    @property
    def service_security_group(self) -> str:
        """The security group of --target fargate's tasks (ingress on the port only)."""
        return f"{self.base}-fargate"

    @property
    def task_execution_role(self) -> str:
        """The role ECS pulls the image and writes the logs with (--target fargate)."""
        return f"{self.base}-ecs-exec"

    @property
    def task_role(self) -> str:
        """The role the server runs as (--target fargate): reads the registry and keys."""
        return f"{self.base}-ecs-task"

    @property
    def task_execution_policy(self) -> str:
        """The execution role's inline policy: pull the server image, write its logs."""
        return "scarab-pull-image-write-logs"

    @property
    def task_policy(self) -> str:
        """The task role's inline policy: read the registry, its artifacts and the keys."""
        return "scarab-read-registry-and-keys"

    @property
    def endpoint(self) -> str:
        """The SageMaker endpoint of --target sagemaker."""
        return self.base

    @property
    def server_repository(self) -> str:
        """The ECR repository of the server image (--target sagemaker and fargate)."""
        return f"{self.base}-server"

    @property
    def sagemaker_role(self) -> str:
        """The execution role of the SageMaker endpoint (--target sagemaker)."""
        return f"{self.base}-sagemaker-role"

    @property
    def sagemaker_policy(self) -> str:
        """That role's inline policy: pull the image, read model.tar.gz, write its logs."""
        return "scarab-sagemaker-endpoint"

    def sagemaker_model(self, digest: str) -> str:
        """A SageMaker Model of the endpoint: immutable, so named by its content's digest."""
        return f"{self.base}-m-{digest}"

    def sagemaker_endpoint_config(self, digest: str) -> str:
        """An EndpointConfig of the endpoint: immutable, named by its content's digest."""
        return f"{self.base}-c-{digest}"

    @property
    def sagemaker_log_group(self) -> str:
        """Where SageMaker writes the endpoint's container logs."""
        return f"/aws/sagemaker/Endpoints/{self.endpoint}"

    @property
    def sagemaker_artifact_prefix(self) -> str:
        """The key prefix of the endpoint's model.tar.gz objects in the artifact bucket."""
        return f"sagemaker/{self.endpoint}/"

    def artifact_bucket(self, account_id: str, region: str) -> str:
        return f"{self.app}-artifacts-{account_id}-{region}"

    @property
    def tags(self) -> dict[str, str]:
        return {TAG_APP: self.app, TAG_STAGE: self.stage}

    def tagged_by(self, tags: dict[str, str], untagged_ok: bool = False) -> bool:
        """Whether a resource with `tags` is this stage's: tagged for it, or (when
        `untagged_ok`) carrying no scarab tags at all (adopted by name)."""
        if untagged_ok and TAG_APP not in tags and TAG_STAGE not in tags:
            return True
        return tags.get(TAG_APP) == self.app and tags.get(TAG_STAGE) == self.stage
