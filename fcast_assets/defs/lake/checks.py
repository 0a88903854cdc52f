"""Data contracts of the lake as asset checks.

The draw-rule and silver-completeness checks are evaluated inside the partitioned assets (declared there with
``check_specs``, built by the helpers below) and are *blocking*: a bronze partition with a rule-breaking row stops
silver and the profile for that game. ``lottery_games_consistent`` checks the games table itself.
"""


import dagster as dg
from sqlmodel import Session, select

from fcast_assets.db.dataset_models import DatasetGame, DatasetGameSlot
from fcast_assets.defs.resources import MetadataDB

BRONZE_RULES = "draw_rules"
SILVER_COMPLETE = "series_complete"
PROFILE_VERDICT = "every_series_profiled"


def bronze_check_spec(asset_key: str = "bronze_draws") -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(BRONZE_RULES, asset=asset_key, blocking=True,
                             description="Every bronze row satisfies the game's rules (slot count, number range, "
                             "repeats, order, bonus numbers, increasing draw dates); breaches are rows in "
                             "dataset_dq_issue, never dropped silently.")


def silver_check_spec(asset_key: str = "silver_series") -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(SILVER_COMPLETE, asset=asset_key, blocking=True,
                             description="Every slot series (N1..Nk, B1.., SUM) has one value per draw, no NaN, "
                             "unique (unique_id, draw_no).")


def profile_check_spec(asset_key: str = "dataset_profile") -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(PROFILE_VERDICT, asset=asset_key, blocking=False,
                             description="Every slot series has profile numbers and a verdict.")


def bronze_check_result(result: dict) -> dg.AssetCheckResult:
    errors = [i for i in result["issues"] if i["severity"] == "error"]
    by_rule: dict[str, int] = {}
    for i in result["issues"]:
        by_rule[f"{i['severity']}:{i['rule']}"] = by_rule.get(f"{i['severity']}:{i['rule']}", 0) + 1
    sample = "\n".join(f"- draw {i['draw_no']} `{i['unique_id']}` {i['rule']}: "
                       f"{(i['detail'] or {}).get('message') or i['detail']}" for i in errors[:20])
    return dg.AssetCheckResult(
        check_name=BRONZE_RULES, asset_key="bronze_draws", passed=not errors,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"errors": len(errors), "warnings": result["warnings"], "by_rule": by_rule,
                  "dataset_version_id": result["dataset_version_id"],
                  "what_to_run": (errors[0]["detail"] or {}).get("message", "") if errors else "",
                  "sample": dg.MetadataValue.md(sample or "none")},
    )


def silver_check_result(problems: list[str], dataset_version_id: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(check_name=SILVER_COMPLETE, asset_key="silver_series", passed=not problems,
                               severity=dg.AssetCheckSeverity.ERROR,
                               metadata={"problems": dg.MetadataValue.md("\n".join(problems) or "none"),
                                         "dataset_version_id": dataset_version_id})


@dg.asset_check(asset="lottery_games", blocking=True,
                description="Every game has exactly n_main main and n_bonus bonus slots and a sane number range.")
def lottery_games_consistent(meta_db: MetadataDB) -> dg.AssetCheckResult:
    bad = []
    with Session(meta_db.engine()) as s:
        for g in s.exec(select(DatasetGame)).all():
            slots = s.exec(select(DatasetGameSlot).where(DatasetGameSlot.game_id == g.game_id)).all()
            n_main = sum(1 for x in slots if x.role == "main")
            n_bonus = sum(1 for x in slots if x.role == "bonus")
            if (n_main, n_bonus) != (g.n_main, g.n_bonus) or g.number_min > g.number_max:
                bad.append(f"{g.code}: slots {n_main}+{n_bonus}, declared {g.n_main}+{g.n_bonus}")
    return dg.AssetCheckResult(passed=not bad, metadata={"problems": dg.MetadataValue.md("\n".join(bad) or "none")})
