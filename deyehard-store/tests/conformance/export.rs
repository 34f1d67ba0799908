//! What exports read before their first line: the DC channels of a range.

use deyehard_core::InverterId;
use deyehard_store::{ExportReader, ReadingWriter, StoreError};

use crate::harness::{TestDb, june, reading};

pub async fn dc_channels_of_a_range(db: TestDb) {
    let store = &db.store;
    let scope = db.tenant("a@example.org").await;
    let other = db.tenant("b@example.org").await;
    let inverter = db.inverter(&scope, "114172220003").await;
    // Two channels in the morning, four around noon, none in the evening.
    let batch: Vec<_> = [(8, 2), (9, 2), (12, 4), (18, 0)]
        .into_iter()
        .map(|(hour, channels)| {
            (
                inverter,
                reading(june(hour, 0), 100.0, 1.0, 1000.0, channels),
            )
        })
        .collect();
    store
        .write_readings(&scope, &batch, june(19, 0))
        .await
        .unwrap();

    let all = store
        .export_dc_channels(&scope, inverter, june(0, 0), june(23, 0))
        .await
        .unwrap();
    assert_eq!(all, vec![1, 2, 3, 4]);
    let morning = store
        .export_dc_channels(&scope, inverter, june(8, 0), june(12, 0))
        .await
        .unwrap();
    assert_eq!(morning, vec![1, 2], "the end is exclusive");
    let evening = store
        .export_dc_channels(&scope, inverter, june(13, 0), june(23, 0))
        .await
        .unwrap();
    assert!(evening.is_empty(), "{evening:?}");

    // Another tenant's inverter, or one that does not exist, is not found.
    for (who, id) in [(&other, inverter), (&scope, InverterId::new(9_999))] {
        let err = store
            .export_dc_channels(who, id, june(0, 0), june(23, 0))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
}
