import dagster as dg

from clipshoe_pipeline.settings import REPLAY_URL, env

AUTOMATION_SENSOR = "clipshoe_automation"


@dg.definitions
def automation() -> dg.Definitions:
    status = dg.DefaultSensorStatus.RUNNING if env(REPLAY_URL) else dg.DefaultSensorStatus.STOPPED
    sensor = dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR, target=dg.AssetSelection.all() | dg.AssetSelection.all_asset_checks(), default_status=status,
        minimum_interval_seconds=60,
        description="Requests what the assets' automation conditions ask for (curation after crawls, "
                    "evaluation after training).")
    return dg.Definitions(sensors=[sensor])
