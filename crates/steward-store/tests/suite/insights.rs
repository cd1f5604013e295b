//! Insights: stored and read back whole (evidence and chart included, the
//! chart's URL derived from the id), listed newest first, filtered by kind
//! and by the exact entity they are about.

use serde_json::json;
use steward_core::store::InsightFilter;
use steward_core::Store;
use steward_protocol::insight::{Chart, ChartBand, ChartKind, ChartPoint, ChartSeries, Insight};

use super::harness::{TestDb, T0};

backend_tests!(
    an_insight_round_trips_whole,
    an_insight_without_a_chart_has_no_chart_url,
    the_same_id_twice_is_refused,
    listing_is_newest_first_and_limited,
    listing_filters_by_kind_and_exact_entity,
);

fn chart() -> Chart {
    Chart {
        kind: ChartKind::Line,
        title: "Hourly energy use <kWh> & \"more\"".into(),
        y_unit: "kWh".into(),
        series: vec![ChartSeries {
            name: "House energy".into(),
            points: vec![
                ChartPoint { x: T0, y: Some(1.25), label: None },
                ChartPoint { x: T0 + 3_600_000, y: None, label: Some("gap".into()) },
                ChartPoint { x: T0 + 7_200_000, y: Some(0.5), label: None },
            ],
        }],
        bands: vec![ChartBand { from: T0 + 3_600_000, to: T0 + 7_200_000, label: "no data: House".into() }],
    }
}

fn insight(id: &str, kind: &str, entities: &[&str], at: i64) -> Insight {
    Insight {
        id: id.into(),
        kind: kind.into(),
        title: format!("Energy use — {id}"),
        summary: "House energy used 12.5 kWh; ünïcödé and 'quotes' survive.".into(),
        evidence: json!({"total_kwh": 12.5, "meters": [{"entity_id": "sensor.house_energy", "peaks": [1.5, 2.0]}]}),
        entity_ids: entities.iter().map(|e| e.to_string()).collect(),
        chart: Some(chart()),
        chart_url: Some(steward_core::insights::chart_url(id)),
        conversation_id: Some("conv_1".into()),
        created_by: "agent:data-scientist".into(),
        created_at: at,
    }
}

fn ids(list: &[Insight]) -> Vec<&str> {
    list.iter().map(|i| i.id.as_str()).collect()
}

async fn an_insight_round_trips_whole(db: &TestDb) {
    let i = insight("ins_0000000000000001", "energy", &["sensor.house_energy", "sensor.solar_energy"], T0);
    db.store.create_insight(&i).await.unwrap();
    let back = db.store.get_insight(&i.id).await.unwrap().unwrap();
    assert_eq!(back, i);
    assert_eq!(back.chart_url.as_deref(), Some("/api/insights/ins_0000000000000001/chart.svg"));
    assert!(db.store.get_insight("ins_missing").await.unwrap().is_none());
    // Another process sees the same.
    let other = db.reopen().await;
    assert_eq!(other.get_insight(&i.id).await.unwrap().unwrap(), i);
    other.close().await;
}

async fn an_insight_without_a_chart_has_no_chart_url(db: &TestDb) {
    let mut i = insight("ins_plain", "note", &[], T0);
    i.chart = None;
    i.chart_url = None;
    i.conversation_id = None;
    i.evidence = serde_json::Value::Null;
    db.store.create_insight(&i).await.unwrap();
    let back = db.store.get_insight("ins_plain").await.unwrap().unwrap();
    assert_eq!(back, i);
    // A chart_url given without a chart is not kept: it follows from the chart.
    let mut odd = insight("ins_odd", "note", &[], T0);
    odd.chart = None;
    db.store.create_insight(&odd).await.unwrap();
    assert_eq!(db.store.get_insight("ins_odd").await.unwrap().unwrap().chart_url, None);
}

async fn the_same_id_twice_is_refused(db: &TestDb) {
    let i = insight("ins_twice", "energy", &["sensor.house_energy"], T0);
    db.store.create_insight(&i).await.unwrap();
    let mut again = i.clone();
    again.title = "overwritten?".into();
    assert!(db.store.create_insight(&again).await.is_err());
    assert_eq!(db.store.get_insight("ins_twice").await.unwrap().unwrap().title, i.title);
    // An entity named twice is kept once.
    let dup = insight("ins_dup", "energy", &["sensor.a", "sensor.a"], T0);
    db.store.create_insight(&dup).await.unwrap();
    let filter = InsightFilter { entity_id: Some("sensor.a".into()), ..InsightFilter::default() };
    assert_eq!(ids(&db.store.list_insights(&filter).await.unwrap()), ["ins_dup"]);
}

async fn listing_is_newest_first_and_limited(db: &TestDb) {
    for (n, at) in [(1, T0 + 20), (2, T0 + 10), (3, T0 + 30), (4, T0 + 10)] {
        db.store.create_insight(&insight(&format!("ins_{n}"), "energy", &[], at)).await.unwrap();
    }
    let all = db.store.list_insights(&InsightFilter::default()).await.unwrap();
    // Newest first; the same time in the order of the id, last first.
    assert_eq!(ids(&all), ["ins_3", "ins_1", "ins_4", "ins_2"]);
    assert!(all.iter().all(|i| i.chart.is_some() && i.chart_url.is_some()));
    let two = db.store.list_insights(&InsightFilter { limit: 2, ..InsightFilter::default() }).await.unwrap();
    assert_eq!(ids(&two), ["ins_3", "ins_1"]);
}

async fn listing_filters_by_kind_and_exact_entity(db: &TestDb) {
    db.store.create_insight(&insight("ins_a", "energy", &["sensor.a_b", "sensor.house"], T0 + 1)).await.unwrap();
    db.store.create_insight(&insight("ins_b", "energy", &["sensor.axb"], T0 + 2)).await.unwrap();
    db.store.create_insight(&insight("ins_c", "diagnosis", &["sensor.a_b"], T0 + 3)).await.unwrap();
    db.store.create_insight(&insight("ins_d", "note", &["Sensor.A_B"], T0 + 4)).await.unwrap();
    let list = |kind: Option<&str>, entity: Option<&str>| {
        let filter = InsightFilter {
            kind: kind.map(String::from),
            entity_id: entity.map(String::from),
            ..InsightFilter::default()
        };
        async move { db.store.list_insights(&filter).await.unwrap() }
    };
    assert_eq!(ids(&list(Some("energy"), None).await), ["ins_b", "ins_a"]);
    // `_` is no wildcard and case matters: only the exact id matches.
    assert_eq!(ids(&list(None, Some("sensor.a_b")).await), ["ins_c", "ins_a"]);
    assert_eq!(ids(&list(Some("energy"), Some("sensor.a_b")).await), ["ins_a"]);
    assert_eq!(ids(&list(None, Some("sensor.a%")).await), Vec::<&str>::new());
    assert_eq!(ids(&list(Some("nothing"), None).await), Vec::<&str>::new());
}
