"""Which input changes make the engine replace a resource, per type the program declares.

Read from the provider source, not guessed: for each type, the arguments marked
`ForceNew: true` (SDKv2) or `RequiresReplace` (plugin framework) in
hashicorp/terraform-provider-aws, named as Pulumi's inputs (camelCase; pulumi-aws renames a
few, e.g. `function_name` -> `name` on a Function, `topic_arn` -> `topic`). Only arguments the
program sets are listed; nested blocks are listed by their top-level input. Source files
(paths under internal/service/), with what they say for the arguments this program sets.
Read for this table (December 2026 snapshots): rds/instance.go, rds/cluster.go,
rds/cluster_instance.go, rds/parameter_group.go, rds/cluster_parameter_group.go,
rds/subnet_group.go, rds/proxy.go, rds/proxy_target.go, ec2/vpc_subnet.go,
ec2/vpc_security_group.go, ec2/vpc_endpoint.go, ecs/task_definition.go, lambda/invocation.go,
apigateway/deployment.go. The others are taken from the same provider's documented
"forces new resource" arguments and were not re-read here:

- rds/instance.go: identifier, engine, db_name, username, storage_encrypted, kms_key_id,
  availability_zone ForceNew; engine_version, instance_class, allocated_storage, multi_az,
  parameter_group_name, db_subnet_group_name, vpc_security_group_ids updatable.
- rds/cluster.go: cluster_identifier, engine, engine_mode, database_name, master_username,
  db_subnet_group_name, kms_key_id, storage_encrypted, availability_zones ForceNew.
- rds/cluster_instance.go: cluster_identifier, engine, identifier, db_subnet_group_name,
  availability_zone ForceNew; instance_class, engine_version updatable.
- rds/parameter_group.go, rds/cluster_parameter_group.go: name, name_prefix, family,
  description ForceNew; parameter updatable.
- rds/subnet_group.go: name ForceNew; subnet_ids, description updatable.
- rds/proxy.go: engine_family, vpc_subnet_ids ForceNew; name, auth, role_arn,
  vpc_security_group_ids, require_tls updatable.
- rds/proxy_target.go: every argument ForceNew (it has no update).
- rds/proxy_default_target_group.go: db_proxy_name ForceNew.
- ec2/vpc_subnet.go: vpc_id, cidr_block, availability_zone ForceNew.
- ec2/vpc_security_group.go: name, name_prefix, description, vpc_id ForceNew.
- ec2/vpc_.go: cidr_block ForceNew. ec2/vpc_route_table.go: vpc_id ForceNew.
- ec2/vpc_route_table_association.go: subnet_id ForceNew (route_table_id updatable).
- ec2/vpc_endpoint.go: vpc_id, service_name, vpc_endpoint_type ForceNew; subnet_ids,
  security_group_ids, route_table_ids updatable.
- ec2/vpc_security_group_ingress_rule.go / egress (framework): security_group_id
  RequiresReplace; the rule's ports and peer updatable.
- lambda/function.go: function_name ForceNew. lambda/invocation.go: function_name,
  qualifier, triggers ForceNew, and `input` through CustomizeDiff with the default
  CREATE_ONLY lifecycle scope. lambda/event_source_mapping.go: event_source_arn ForceNew.
  lambda/permission.go: every argument ForceNew.
- ecs/task_definition.go: container_definitions, cpu, memory, family, network_mode,
  requires_compatibilities, runtime_platform, execution_role_arn, task_role_arn ForceNew.
- ecs/service.go: name, cluster, launch_type ForceNew. ecs/cluster.go: name ForceNew.
- ecr/repository.go: name ForceNew. ecr/lifecycle_policy.go: repository ForceNew.
- sqs/queue.go: name ForceNew. sqs/queue_redrive_allow_policy.go: queue_url ForceNew.
- sns/topic.go: name ForceNew. sns/topic_subscription.go: topic_arn, protocol, endpoint
  ForceNew. ses/email_identity.go: email ForceNew.
- logs/group.go: name ForceNew. events/rule.go: name ForceNew. events/target.go: rule,
  target_id ForceNew. cloudwatch/metric_alarm.go: alarm_name ForceNew.
  cloudwatch/dashboard.go: dashboard_name ForceNew.
- apigateway/deployment.go: rest_api_id, triggers ForceNew. apigateway/stage.go:
  rest_api_id, stage_name ForceNew. apigateway/usage_plan_key.go: key_id, key_type,
  usage_plan_id ForceNew. apigateway/rest_api.go, api_key.go, usage_plan.go: name updatable.
- iam/role.go: name, name_prefix ForceNew. iam/role_policy.go: name, role ForceNew.
- appautoscaling/target.go: resource_id, scalable_dimension, service_namespace ForceNew.
  appautoscaling/policy.go: name, resource_id, scalable_dimension, service_namespace
  ForceNew.
- cognitoidp/user_pool.go: name, alias_attributes, username_attributes ForceNew (Cognito's
  UpdateUserPool takes neither); account_recovery_setting, auto_verified_attributes
  updatable. cognitoidp/user_pool_client.go: user_pool_id, generate_secret ForceNew; name,
  explicit_auth_flows updatable. cognitoidp/user_group.go: name, user_pool_id ForceNew.
- secretsmanager/secret.go: name, name_prefix ForceNew. secretsmanager/secret_version.go:
  secret_id, secret_string ForceNew (a new value is a new version).

Pulumi's own rules on top: an explicit provider whose `region` changes is replaced, and with
it every resource it manages (pulumi-aws treats a region change as replace-forcing provider
configuration); pulumi-docker-build's Image has no replace-forcing input (a changed input is
a rebuild, an update).
"""

from __future__ import annotations

from collections.abc import Mapping

FORCE_NEW: Mapping[str, frozenset[str]] = {typ: frozenset(props) for typ, props in {
    "pulumi:providers:aws": {"region"},
    "aws:rds/instance:Instance": {"identifier", "engine", "dbName", "username",
                                  "storageEncrypted", "kmsKeyId", "availabilityZone"},
    "aws:rds/cluster:Cluster": {"clusterIdentifier", "engine", "engineMode", "databaseName",
                                "masterUsername", "dbSubnetGroupName", "kmsKeyId",
                                "storageEncrypted", "availabilityZones"},
    "aws:rds/clusterInstance:ClusterInstance": {"clusterIdentifier", "engine", "identifier",
                                                "dbSubnetGroupName", "availabilityZone"},
    "aws:rds/parameterGroup:ParameterGroup": {"name", "namePrefix", "family", "description"},
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": {"name", "namePrefix", "family",
                                                            "description"},
    "aws:rds/subnetGroup:SubnetGroup": {"name"},
    "aws:rds/proxy:Proxy": {"engineFamily", "vpcSubnetIds"},
    "aws:rds/proxyTarget:ProxyTarget": {"dbProxyName", "targetGroupName",
                                        "dbInstanceIdentifier", "dbClusterIdentifier"},
    "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup": {"dbProxyName"},
    "aws:ec2/vpc:Vpc": {"cidrBlock"},
    "aws:ec2/subnet:Subnet": {"vpcId", "cidrBlock", "availabilityZone"},
    "aws:ec2/routeTable:RouteTable": {"vpcId"},
    "aws:ec2/routeTableAssociation:RouteTableAssociation": {"subnetId"},
    "aws:ec2/securityGroup:SecurityGroup": {"name", "namePrefix", "description", "vpcId"},
    "aws:ec2/vpcEndpoint:VpcEndpoint": {"vpcId", "serviceName", "vpcEndpointType"},
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": {"securityGroupId"},
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": {"securityGroupId"},
    "aws:lambda/function:Function": {"name"},
    "aws:lambda/invocation:Invocation": {"functionName", "qualifier", "triggers", "input"},
    "aws:lambda/eventSourceMapping:EventSourceMapping": {"eventSourceArn"},
    "aws:lambda/permission:Permission": {"action", "function", "principal", "sourceArn",
                                         "statementId", "qualifier"},
    "aws:ecs/taskDefinition:TaskDefinition": {"containerDefinitions", "cpu", "memory",
                                              "family", "networkMode",
                                              "requiresCompatibilities", "runtimePlatform",
                                              "executionRoleArn", "taskRoleArn"},
    "aws:ecs/service:Service": {"name", "cluster", "launchType"},
    "aws:ecs/cluster:Cluster": {"name"},
    "aws:ecr/repository:Repository": {"name"},
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": {"repository"},
    "aws:sqs/queue:Queue": {"name"},
    "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy": {"queueUrl"},
    "aws:sns/topic:Topic": {"name"},
    "aws:sns/topicSubscription:TopicSubscription": {"topic", "protocol", "endpoint"},
    "aws:ses/emailIdentity:EmailIdentity": {"email"},
    "aws:cloudwatch/logGroup:LogGroup": {"name"},
    "aws:cloudwatch/eventRule:EventRule": {"name"},
    "aws:cloudwatch/eventTarget:EventTarget": {"rule", "targetId"},
    "aws:cloudwatch/metricAlarm:MetricAlarm": {"name"},
    "aws:cloudwatch/dashboard:Dashboard": {"dashboardName"},
    "aws:apigateway/restApi:RestApi": set(),
    "aws:apigateway/deployment:Deployment": {"restApi", "triggers"},
    "aws:apigateway/stage:Stage": {"restApi", "stageName"},
    "aws:apigateway/apiKey:ApiKey": set(),
    "aws:apigateway/usagePlan:UsagePlan": set(),
    "aws:apigateway/usagePlanKey:UsagePlanKey": {"keyId", "keyType", "usagePlanId"},
    "aws:iam/role:Role": {"name", "namePrefix"},
    "aws:iam/rolePolicy:RolePolicy": {"name", "role"},
    "aws:appautoscaling/target:Target": {"resourceId", "scalableDimension", "serviceNamespace"},
    "aws:appautoscaling/policy:Policy": {"name", "resourceId", "scalableDimension",
                                         "serviceNamespace"},
    "aws:cognito/userPool:UserPool": {"name", "aliasAttributes", "usernameAttributes"},
    "aws:cognito/userPoolClient:UserPoolClient": {"userPoolId", "generateSecret"},
    "aws:cognito/userGroup:UserGroup": {"name", "userPoolId"},
    "aws:secretsmanager/secret:Secret": {"name", "namePrefix"},
    "aws:secretsmanager/secretVersion:SecretVersion": {"secretId", "secretString"},
    "docker-build:index:Image": set(),
    "pulumi:providers:docker-build": set(),
}.items()}

# The input holding a physical name AWS requires to be unique, per type that has one: a
# replacement that keeps it must delete the old resource first (Pulumi creates first).
# Types whose names need not be unique (REST APIs, API keys, usage plans, task definition
# families) and auto-named types are absent.
FIXED_NAME: Mapping[str, str] = {
    "aws:rds/instance:Instance": "identifier",
    "aws:rds/cluster:Cluster": "clusterIdentifier",
    "aws:rds/subnetGroup:SubnetGroup": "name",
    "aws:sqs/queue:Queue": "name",
    "aws:sns/topic:Topic": "name",
    "aws:ses/emailIdentity:EmailIdentity": "email",
    "aws:lambda/function:Function": "name",
    "aws:cloudwatch/logGroup:LogGroup": "name",
    "aws:cloudwatch/eventRule:EventRule": "name",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "name",
    "aws:cloudwatch/dashboard:Dashboard": "dashboardName",
    "aws:apigateway/stage:Stage": "stageName",
    "aws:ecr/repository:Repository": "name",
    "aws:ecs/cluster:Cluster": "name",
    "aws:ecs/service:Service": "name",
}

# Where a fixed name (or a subnet's CIDR) must be unique, when that is inside another
# resource: a replacement forced by a new container cannot collide with the old one.
NAME_SCOPE: Mapping[str, str] = {
    "aws:apigateway/stage:Stage": "restApi",
    "aws:ecs/service:Service": "cluster",
    "aws:ec2/subnet:Subnet": "vpcId",
}
