"""Managed nodes over the AWS endpoint: activations, DescribeInstanceInformation,
deregistration and ManagedInstance tags, driven by boto3 and the aws CLI."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from fleet.models import ManagedNode, NodeStatus
from tests.aws.conftest import cli_json
from tests.factories import ActivationFactory, ManagedNodeFactory, UserFactory, user_with_policy


def error_of(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def ids_of(listing: dict) -> list[str]:
    return [item["InstanceId"] for item in listing["InstanceInformationList"]]


# --- Activations ----------------------------------------------------------------------------


def test_create_activation_returns_its_id_and_code_once(ssm):
    expires = datetime.now(UTC) + timedelta(days=2)
    created = ssm.create_activation(
        Description="rack 4",
        DefaultInstanceName="web",
        IamRole="SSMServiceRole",
        RegistrationLimit=5,
        ExpirationDate=expires,
        Tags=[{"Key": "Env", "Value": "dev"}],
    )
    assert uuid.UUID(created["ActivationId"])
    assert len(created["ActivationCode"]) == 20

    [shown] = ssm.describe_activations()["ActivationList"]
    assert shown["ActivationId"] == created["ActivationId"]
    assert shown["Description"] == "rack 4"
    assert shown["DefaultInstanceName"] == "web"
    assert shown["RegistrationLimit"] == 5
    assert shown["RegistrationsCount"] == 0
    assert shown["Expired"] is False
    assert abs((shown["ExpirationDate"] - expires).total_seconds()) < 1
    assert isinstance(shown["CreatedDate"], datetime)
    assert shown["Tags"] == [{"Key": "Env", "Value": "dev"}]
    assert "ActivationCode" not in shown  # only its hash is kept


def test_create_activation_refuses_what_the_service_refuses(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.create_activation(
            IamRole="SSMServiceRole", ExpirationDate=datetime.now(UTC) - timedelta(hours=1)
        )
    assert error_of(raised) == ("ValidationException", "The expiry must be in the future.")


def test_create_activation_checks_the_model(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.create_activation(IamRole="SSMServiceRole", RegistrationLimit=1001)
    code, message = error_of(raised)
    assert code == "ValidationException"
    # AWS quotes the value ('1001'); the core renders a number bare (reported).
    assert re.fullmatch(
        "1 validation error detected: Value '?1001'? at 'registrationLimit' failed to satisfy "
        "constraint: Member must have value less than or equal to 1000",
        message,
    )


def test_describe_activations_filters(ssm):
    web = ActivationFactory(default_instance_name="web")
    db = ActivationFactory(default_instance_name="db", iam_role="DbRole")

    def listed(**filters):
        answer = ssm.describe_activations(
            Filters=[{"FilterKey": key, "FilterValues": values} for key, values in filters.items()]
        )
        return {item["ActivationId"] for item in answer["ActivationList"]}

    assert listed(ActivationIds=[web.id]) == {web.id}
    assert listed(ActivationIds=[web.id, db.id]) == {web.id, db.id}
    assert listed(DefaultInstanceName=["db"]) == {db.id}
    assert listed(IamRole=["DbRole"]) == {db.id}
    assert listed(IamRole=["Other"]) == set()


def test_describe_activations_refuses_a_filter_without_a_key(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.describe_activations(Filters=[{"FilterValues": ["web"]}])
    assert error_of(raised) == (
        "InvalidFilter",
        "Each filter needs a FilterKey and at least one FilterValue.",
    )


def test_describe_activations_paginates(ssm):
    made = {ActivationFactory().id for _ in range(5)}
    pages = list(
        ssm.get_paginator("describe_activations").paginate(PaginationConfig={"PageSize": 2})
    )
    assert [len(page["ActivationList"]) for page in pages] == [2, 2, 1]
    assert {item["ActivationId"] for page in pages for item in page["ActivationList"]} == made
    assert "NextToken" not in pages[-1]


def test_a_bad_next_token_is_invalid(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.describe_activations(NextToken="not-a-token")
    assert error_of(raised) == ("InvalidNextToken", "The specified token is not valid.")


def test_delete_activation_then_it_is_unknown(ssm):
    activation = ActivationFactory()
    assert ssm.delete_activation(ActivationId=activation.id)["ResponseMetadata"]
    assert ssm.describe_activations()["ActivationList"] == []
    with pytest.raises(ClientError) as raised:
        ssm.delete_activation(ActivationId=activation.id)
    assert error_of(raised) == ("InvalidActivationId", f"There is no activation {activation.id}.")


def test_delete_activation_checks_the_id_pattern(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.delete_activation(ActivationId="nope")
    code, message = error_of(raised)
    assert code == "ValidationException"
    assert "at 'activationId' failed to satisfy constraint: Member must satisfy regular" in message


# --- DescribeInstanceInformation ------------------------------------------------------------


def test_describe_instance_information_shape(ssm):
    activation = ActivationFactory(iam_role="SSMServiceRole")
    node = ManagedNodeFactory(
        name="web-1",
        hostname="web-1.example.com",
        ip_address="10.1.2.3",
        platform_version="12",
        activation_id=activation.id,
    )
    [info] = ssm.describe_instance_information()["InstanceInformationList"]
    assert info["InstanceId"] == node.pk
    assert info["PingStatus"] == "Online"
    assert isinstance(info["LastPingDateTime"], datetime)
    assert info["AgentVersion"] == "0.1.0"
    assert info["IsLatestVersion"] is True
    assert info["PlatformType"] == "Linux"
    assert info["PlatformName"] == "Debian GNU/Linux"
    assert info["PlatformVersion"] == "12"
    assert info["ActivationId"] == activation.id
    assert info["IamRole"] == "SSMServiceRole"
    assert abs((info["RegistrationDate"] - node.registered_at).total_seconds()) < 1
    assert info["ResourceType"] == "ManagedInstance"
    assert info["Name"] == "web-1"
    assert info["IPAddress"] == "10.1.2.3"
    assert info["ComputerName"] == "web-1.example.com"
    assert info["SourceId"] == node.pk
    assert info["SourceType"] == "AWS::SSM::ManagedInstance"


def test_deregistered_nodes_are_not_listed(ssm):
    kept = ManagedNodeFactory()
    ManagedNodeFactory(status=NodeStatus.DEREGISTERED)
    assert ids_of(ssm.describe_instance_information()) == [kept.pk]


def test_describe_instance_information_filters(ssm):
    activation = ActivationFactory()
    dev = ManagedNodeFactory(tags={"Env": "dev"}, activation_id=activation.id)
    prod = ManagedNodeFactory(tags={"Env": "prod", "Team": "web"}, status="ConnectionLost")
    windows = ManagedNodeFactory(platform_type="Windows", agent_version="0.0.9")

    def listed(**filters):
        answer = ssm.describe_instance_information(
            Filters=[{"Key": key, "Values": values} for key, values in filters.items()]
        )
        return set(ids_of(answer))

    assert listed(InstanceIds=[dev.pk, "i-0123456789abcdef0"]) == {dev.pk}
    assert listed(PingStatus=["ConnectionLost"]) == {prod.pk}
    assert listed(PingStatus=["Inactive"]) == set()
    assert listed(PlatformTypes=["Windows"]) == {windows.pk}
    assert listed(AgentVersion=["0.0.9"]) == {windows.pk}
    assert listed(ActivationIds=[activation.id]) == {dev.pk}
    assert listed(ResourceType=["ManagedInstance"]) == {dev.pk, prod.pk, windows.pk}
    assert listed(ResourceType=["EC2Instance"]) == set()
    assert listed(AssociationStatus=["Success"]) == set()
    assert listed(**{"tag:Env": ["dev", "prod"]}) == {dev.pk, prod.pk}
    assert listed(**{"tag:Env": ["prod"], "PingStatus": ["Online"]}) == set()
    assert listed(**{"tag-key": ["Team"]}) == {prod.pk}
    assert listed(**{"tag-key": ["Team", "Env"]}) == {dev.pk, prod.pk}

    legacy = ssm.describe_instance_information(
        InstanceInformationFilterList=[{"key": "PlatformTypes", "valueSet": ["Linux"]}]
    )
    assert set(ids_of(legacy)) == {dev.pk, prod.pk}


@pytest.mark.parametrize(
    ("filters", "code", "message"),
    [
        (
            [{"Key": "Colour", "Values": ["blue"]}],
            "InvalidFilterKey",
            "The filter key Colour is not valid: use InstanceIds, AgentVersion, PingStatus, "
            "PlatformTypes, ActivationIds, IamRole, ResourceType, AssociationStatus, tag-key "
            "or tag:<key>.",
        ),
        (
            [{"Key": "PingStatus", "Values": ["Asleep"]}],
            "InvalidInstanceInformationFilterValue",
            "The filter value Asleep is not valid for PingStatus: use Online, ConnectionLost, "
            "Inactive.",
        ),
        (
            [{"Key": "InstanceIds", "Values": ["web-1"]}],
            "InvalidInstanceId",
            "The instance ID web-1 is not valid.",
        ),
    ],
)
def test_describe_instance_information_refuses_bad_filters(ssm, filters, code, message):
    with pytest.raises(ClientError) as raised:
        ssm.describe_instance_information(Filters=filters)
    assert error_of(raised) == (code, message)


def test_both_filter_lists_at_once_are_refused(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.describe_instance_information(
            InstanceInformationFilterList=[{"key": "PingStatus", "valueSet": ["Online"]}],
            Filters=[{"Key": "PingStatus", "Values": ["Online"]}],
        )
    assert error_of(raised) == (
        "ValidationException",
        "Use either InstanceInformationFilterList or Filters in a request, not both.",
    )


def test_max_results_beyond_fifty_is_a_validation_error(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.describe_instance_information(MaxResults=51)
    code, message = error_of(raised)
    assert code == "ValidationException"
    assert re.fullmatch(
        "1 validation error detected: Value '?51'? at 'maxResults' failed to satisfy constraint: "
        "Member must have value less than or equal to 50",
        message,
    )


def test_describe_instance_information_paginates(ssm):
    made = {ManagedNodeFactory().pk for _ in range(12)}
    pages = list(
        ssm.get_paginator("describe_instance_information").paginate(
            PaginationConfig={"PageSize": 5}
        )
    )
    assert [len(page["InstanceInformationList"]) for page in pages] == [5, 5, 2]
    assert {node for page in pages for node in ids_of(page)} == made


def test_a_user_without_a_policy_is_denied(client_for):
    ManagedNodeFactory()
    nobody = client_for(UserFactory(username="nobody"))
    with pytest.raises(ClientError) as raised:
        nobody.describe_instance_information()
    assert error_of(raised) == (
        "AccessDeniedException",
        "User nobody is not authorized to perform ssm:DescribeInstanceInformation on any "
        "managed node",
    )
    with pytest.raises(ClientError) as raised:
        nobody.create_activation(IamRole="SSMServiceRole")
    assert error_of(raised)[0] == "AccessDeniedException"


def test_a_policy_scoped_by_tags_lists_only_those_nodes(client_for):
    dev = ManagedNodeFactory(tags={"Env": "dev"})
    ManagedNodeFactory(tags={"Env": "prod"})
    operator = user_with_policy(
        "olga",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "ssm:DescribeInstanceInformation",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"ssm:resourceTag/Env": "dev"}},
                }
            ],
        },
    )
    assert ids_of(client_for(operator).describe_instance_information()) == [dev.pk]


# --- Deregistration -------------------------------------------------------------------------


def test_deregister_managed_instance(ssm):
    node = ManagedNodeFactory()
    ssm.deregister_managed_instance(InstanceId=node.pk)
    assert ManagedNode.objects.get(pk=node.pk).status == NodeStatus.DEREGISTERED
    assert ids_of(ssm.describe_instance_information()) == []
    with pytest.raises(ClientError) as raised:
        ssm.deregister_managed_instance(InstanceId=node.pk)
    assert error_of(raised) == ("InvalidInstanceId", f"{node.pk} is already deregistered.")


def test_deregister_an_unknown_node(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.deregister_managed_instance(InstanceId="mi-0123456789abcdef0")
    assert error_of(raised) == (
        "InvalidInstanceId",
        "There is no managed node mi-0123456789abcdef0.",
    )


# --- Tags -----------------------------------------------------------------------------------


def test_managed_instance_tags(ssm):
    node = ManagedNodeFactory(tags={"Env": "dev"})
    ssm.add_tags_to_resource(
        ResourceType="ManagedInstance",
        ResourceId=node.pk,
        Tags=[{"Key": "Team", "Value": "web"}, {"Key": "Env", "Value": "prod"}],
    )
    listed = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=node.pk)
    assert listed["TagList"] == [
        {"Key": "Env", "Value": "prod"},
        {"Key": "Team", "Value": "web"},
    ]
    ssm.remove_tags_from_resource(
        ResourceType="ManagedInstance", ResourceId=node.pk, TagKeys=["Env"]
    )
    listed = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=node.pk)
    assert listed["TagList"] == [{"Key": "Team", "Value": "web"}]
    found = ssm.describe_instance_information(Filters=[{"Key": "tag:Team", "Values": ["web"]}])
    assert ids_of(found) == [node.pk]


def test_tags_of_an_unknown_node(ssm):
    for call in (
        lambda: ssm.list_tags_for_resource(
            ResourceType="ManagedInstance", ResourceId="mi-0123456789abcdef0"
        ),
        lambda: ssm.add_tags_to_resource(
            ResourceType="ManagedInstance",
            ResourceId="mi-0123456789abcdef0",
            Tags=[{"Key": "Env", "Value": "dev"}],
        ),
        lambda: ssm.remove_tags_from_resource(
            ResourceType="ManagedInstance", ResourceId="mi-0123456789abcdef0", TagKeys=["Env"]
        ),
    ):
        with pytest.raises(ClientError) as raised:
            call()
        assert error_of(raised) == (
            "InvalidResourceId",
            "There is no managed node mi-0123456789abcdef0.",
        )


def test_too_many_tags(ssm):
    node = ManagedNodeFactory(tags={f"k{n}": "v" for n in range(50)})
    with pytest.raises(ClientError) as raised:
        ssm.add_tags_to_resource(
            ResourceType="ManagedInstance",
            ResourceId=node.pk,
            Tags=[{"Key": "one-more", "Value": "v"}],
        )
    assert error_of(raised) == (
        "TooManyTagsError",
        f"{node.pk} would hold more than 50 tags; remove some first.",
    )


# --- The aws CLI ----------------------------------------------------------------------------


def test_the_aws_cli_describes_instance_information(aws_cli):
    dev = ManagedNodeFactory(tags={"Env": "dev"})
    ManagedNodeFactory(tags={"Env": "prod"})
    listed = cli_json(
        aws_cli("ssm", "describe-instance-information", "--filters", "Key=tag:Env,Values=dev")
    )
    [info] = listed["InstanceInformationList"]
    assert info["InstanceId"] == dev.pk
    assert info["ResourceType"] == "ManagedInstance"


def test_the_aws_cli_paginates_on_its_own(aws_cli):
    made = {ManagedNodeFactory().pk for _ in range(7)}
    listed = cli_json(aws_cli("ssm", "describe-instance-information", "--page-size", "5"))
    assert {info["InstanceId"] for info in listed["InstanceInformationList"]} == made


def test_the_aws_cli_reports_an_unknown_node(aws_cli):
    done = aws_cli("ssm", "deregister-managed-instance", "--instance-id", "mi-0123456789abcdef0")
    assert done.returncode in (254, 255)
    assert "InvalidInstanceId" in done.stderr


def test_a_next_token_serves_only_the_listing_it_came_from(ssm):
    for _ in range(6):
        ManagedNodeFactory(tags={"Env": "dev"})
    first = ssm.describe_instance_information(MaxResults=5)
    assert len(first["InstanceInformationList"]) == 5
    with pytest.raises(ClientError) as raised:
        ssm.describe_instance_information(
            MaxResults=5,
            NextToken=first["NextToken"],
            Filters=[{"Key": "tag:Env", "Values": ["dev"]}],
        )
    assert error_of(raised) == ("InvalidNextToken", "The specified token is not valid.")
    rest = ssm.describe_instance_information(MaxResults=5, NextToken=first["NextToken"])
    assert len(rest["InstanceInformationList"]) == 1 and "NextToken" not in rest
