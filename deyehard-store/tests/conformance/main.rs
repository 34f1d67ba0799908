//! The store conformance suite: every test is written once and instantiated for SQLite (a temp
//! file per test) and PostgreSQL (a fresh database per test, from `DEYEHARD_TEST_PG_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`). PostgreSQL tests fail loudly when
//! the server is unreachable or the backend is not compiled in; they are never skipped.
//!
//! Run: `cargo test -p deyehard-store --all-features`.

// `cfg(test)` (always true in a test binary) marks these modules as test code for clippy, so
// the workspace's `allow-unwrap-in-tests` applies to the helpers in them too.
#[cfg(test)]
mod accounts;
#[cfg(test)]
mod admin;
#[cfg(test)]
mod dashboard;
#[cfg(test)]
mod devices;
#[cfg(test)]
mod energy;
#[cfg(test)]
mod export;
#[cfg(test)]
mod frames;
#[cfg(test)]
mod harness;
#[cfg(test)]
mod inverters;
#[cfg(test)]
#[cfg(feature = "postgres")]
mod isolation;
#[cfg(test)]
mod maintenance;
#[cfg(test)]
mod readings;

/// Instantiates `async fn name(db: TestDb)` tests for every backend.
macro_rules! conformance {
    ($($module:ident :: $name:ident),* $(,)?) => {
        #[cfg(feature = "sqlite")]
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::harness::run(crate::harness::Kind::Sqlite, crate::$module::$name).await;
                }
            )*
        }

        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::harness::run(crate::harness::Kind::Postgres, crate::$module::$name).await;
                }
            )*
        }
    };
}

conformance! {
    accounts::user_email_is_unique_case_insensitively,
    accounts::profile_password_and_session_version,
    accounts::api_key_resolution,
    accounts::api_keys_of_other_tenants_are_not_found,
    accounts::admin_methods_recheck_superuser,
    admin::admin_searches_inverters_across_tenants,
    admin::reassigning_moves_the_inverter_with_all_its_data,
    admin::reassigning_refuses_bad_targets_and_changes_nothing,
    admin::serial_conflicts_and_unknown_serials,
    admin::admin_counts_users_inverters_and_keys,
    admin::operator_lists_users_and_sets_superuser,
    inverters::inverter_lifecycle_and_conflicts,
    inverters::other_tenants_inverters_are_not_found,
    inverters::unknown_serials_until_registered,
    readings::readings_round_trip_at_full_precision,
    readings::duplicates_change_nothing,
    readings::foreign_inverters_store_nothing,
    readings::other_tenants_readings_are_not_found,
    readings::power_series_is_downsampled_with_gaps,
    readings::concurrent_writers_lose_nothing,
    energy::energy_of_real_shaped_days,
    energy::dst_days_have_23_and_25_hours,
    energy::late_readings_give_the_same_energy,
    energy::energy_views_and_summary,
    energy::a_late_reading_recomputes_only_nearby_days,
    energy::batches_of_many_inverters_keep_each_inverters_energy,
    devices::unclaimed_logger_and_take_after_claim,
    devices::raw_frames_of_claimed_loggers,
    frames::logger_frames_are_written_in_one_batch,
    frames::a_failing_frame_fails_the_whole_batch,
    maintenance::deleting_a_user_leaves_no_orphans,
    maintenance::deleting_an_inverter_deletes_its_series,
    maintenance::admin_deleting_a_user_deletes_its_series,
    maintenance::writes_racing_an_inverter_delete_leave_no_orphans,
    maintenance::retention_deletes_only_old_rows,
    maintenance::backend_info_reports_the_backend,
    export::dc_channels_of_a_range,
    dashboard::status_of_a_real_shaped_day,
    dashboard::statuses_without_data_and_across_tenants,
    dashboard::summary_power_is_the_peak_of_the_sum,
    dashboard::summary_energy_on_dst_days,
    dashboard::dc_channels_and_metric_series,
}

/// PostgreSQL-only tests (RLS has no SQLite counterpart: there, the SQL's `WHERE user_id` is
/// the isolation, which the cross-tenant tests above cover on both backends).
#[cfg(feature = "postgres")]
mod postgres_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rls_shows_each_tenant_only_its_rows() {
        let test = crate::isolation::rls_shows_each_tenant_only_its_rows;
        crate::harness::run(crate::harness::Kind::Postgres, test).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn series_rows_must_name_an_inverter_of_their_tenant() {
        let test = crate::isolation::series_rows_must_name_an_inverter_of_their_tenant;
        crate::harness::run(crate::harness::Kind::Postgres, test).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claim_conflicts_are_isolated_by_rls() {
        let test = crate::admin::claim_conflicts_are_isolated_by_rls;
        crate::harness::run(crate::harness::Kind::Postgres, test).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn app_role_cannot_bypass_rls() {
        let test = crate::isolation::app_role_cannot_bypass_rls;
        crate::harness::run(crate::harness::Kind::Postgres, test).await;
    }
}

/// The PostgreSQL half of the suite must not disappear quietly when the feature is off.
#[cfg(not(feature = "postgres"))]
#[test]
fn postgres_backend_is_compiled() {
    panic!(
        "the PostgreSQL conformance tests are not compiled: run \
         `cargo test -p deyehard-store --all-features`"
    );
}

/// Both migration trees must have the same versions (a version missing on one side fails).
#[test]
fn migration_versions_match() {
    let versions = |backend: &str| -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../migrations")
            .join(backend);
        let mut versions: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| {
                entry
                    .expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name.ends_with(".sql"))
            .map(|name| name.split('_').next().unwrap_or_default().to_owned())
            .collect();
        versions.sort();
        versions
    };
    let postgres = versions("postgres");
    assert!(!postgres.is_empty());
    assert_eq!(
        postgres,
        versions("sqlite"),
        "migrations/postgres and migrations/sqlite differ"
    );
}
