from fleet.local_agent import ACTIVATION_CODE_ENV, local_agent_plan
from fleet.models import Activation


def test_a_fresh_install_gets_a_one_use_local_activation_passed_through_the_environment(
    admin_user, tmp_path
):
    plan = local_agent_plan(
        data_dir=tmp_path, server_url="http://127.0.0.1:8000", admin_username="ada"
    )
    activation = Activation.objects.get()
    assert activation.is_local
    assert activation.registration_limit == 1
    code = plan.env[ACTIVATION_CODE_ENV]
    assert code not in " ".join(plan.argv)
    assert activation.id in plan.argv
    assert "register" in plan.argv and "--wait" in plan.argv
    assert plan.node_id is None


def test_state_the_database_does_not_know_is_cleared_and_registered_again(admin_user, tmp_path):
    stale = tmp_path / "agent"
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    local_agent_plan(data_dir=tmp_path, server_url="http://127.0.0.1:8000", admin_username="ada")
    assert not (stale / "config.json").exists()
    assert Activation.objects.filter(is_local=True).count() == 1
