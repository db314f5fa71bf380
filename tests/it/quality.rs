//! The Event Quality Score client ([`PinterestHttp::event_quality`]) against [`FakePinterest`]'s
//! `conversion_eqs`: both windows and both sources, the query the client sends, each error kind a
//! merchant sees, and [`compare`] on what came back.

use std::time::Duration;

use pinrelay::pinterest::quality::{compare, hint};
use pinrelay::pinterest::{
    Component, IngestionSource, Lookback, OverallStatus, PinterestHttp, PinterestHttpConfig,
    QualityError,
};
use serde_json::json;

use crate::fake_pinterest::{ACCESS_TOKEN, AD_ACCOUNT_ID, Failure, FakePinterest};

fn client(base_url: String, token: &str) -> PinterestHttp {
    PinterestHttp::new(PinterestHttpConfig {
        base_url,
        ad_account_id: AD_ACCOUNT_ID.to_owned(),
        access_token: token.to_owned().into(),
        // The score is read-only: test mode must not reach its query.
        test_mode: true,
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
    })
    .unwrap()
}

#[tokio::test]
async fn reads_both_windows_for_both_sources() {
    let fake = FakePinterest::start().await;
    let api = client(fake.base_url(), ACCESS_TOKEN);
    let pairs = [
        (Lookback::OneDay, IngestionSource::ConversionsApi),
        (Lookback::OneDay, IngestionSource::Tag),
        (Lookback::FourteenDays, IngestionSource::ConversionsApi),
        (Lookback::FourteenDays, IngestionSource::Tag),
    ];
    for (lookback, source) in pairs {
        let scores = api.event_quality(lookback, source).await.unwrap();
        assert_eq!(scores.len(), 1, "{lookback:?} {source:?}");
        assert_eq!(scores[0].source(), Some(source));
        assert_eq!(scores[0].lookback(), Some(lookback));
        assert!(
            scores[0]
                .component(&Component::ExternalEventId, "checkout")
                .is_some_and(|c| c.overlap.is_some())
        );
    }
    let sent: Vec<(Option<String>, Option<String>, Option<String>)> = fake
        .quality_requests()
        .into_iter()
        .inspect(|r| {
            assert_eq!(r.ad_account_id, AD_ACCOUNT_ID);
            assert_eq!(r.status, 200);
            assert_eq!(r.test, None);
        })
        .map(|r| (r.lookback_period, r.ingestion_source, r.source_platform))
        .collect();
    let expected: Vec<_> = pairs
        .iter()
        .map(|(l, s)| {
            (
                Some(l.as_str().to_owned()),
                Some(s.as_str().to_owned()),
                None,
            )
        })
        .collect();
    assert_eq!(sent, expected);
    assert!(fake.requests().is_empty(), "no events were posted");
}

#[tokio::test]
async fn returns_the_score_set_for_a_window_and_source() {
    let fake = FakePinterest::start().await;
    fake.set_event_quality(
        "1d",
        "TAG",
        json!([{
            "overall_status": "NEEDS_IMPROVEMENT",
            "ingestion_source": "TAG",
            "source_platform": "WEB",
            "lookback_period": "1d",
            "quality_components": {
                "click_id_epik": { "checkout": { "coverage": 4.0, "issues": [
                    { "id": "NO_CLICK_ID", "name": "Missing click ID", "reason": "No epik." }
                ] } }
            }
        }]),
    );
    let api = client(fake.base_url(), ACCESS_TOKEN);
    let tag = api
        .event_quality(Lookback::OneDay, IngestionSource::Tag)
        .await
        .unwrap();
    assert_eq!(tag[0].overall_status, OverallStatus::NeedsImprovement);
    let click = tag[0]
        .component(&Component::ClickIdEpik, "checkout")
        .unwrap();
    assert_eq!(click.coverage, 4.0);
    assert_eq!(click.issues[0].id, "NO_CLICK_ID");
    // The other window keeps the default.
    let other = api
        .event_quality(Lookback::FourteenDays, IngestionSource::Tag)
        .await
        .unwrap();
    assert_eq!(other[0].overall_status, OverallStatus::Good);
}

#[tokio::test]
async fn a_refused_token_says_which_setting_to_fix() {
    let fake = FakePinterest::start().await;
    let error = client(fake.base_url(), "revoked")
        .event_quality(Lookback::OneDay, IngestionSource::ConversionsApi)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, QualityError::Unauthorized { message } if message == "Authentication failed."),
        "{error:?}"
    );
    assert!(error.to_string().contains("PINTEREST_API_TOKEN"));
    assert!(
        error.to_string().contains("ads:read"),
        "a conversion-only token is told what it lacks: {error}"
    );
    assert_eq!(fake.quality_requests()[0].status, 401);
}

#[tokio::test]
async fn a_token_without_ads_read_names_the_ad_account() {
    let fake = FakePinterest::start().await;
    fake.fail_next(1, Failure::Status(403));
    let api = client(fake.base_url(), ACCESS_TOKEN);
    let error = api
        .event_quality(Lookback::OneDay, IngestionSource::ConversionsApi)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, QualityError::Forbidden { ad_account_id, .. } if ad_account_id == AD_ACCOUNT_ID),
        "{error:?}"
    );
    assert!(error.to_string().contains("ads:read"));
    fake.fail_next(1, Failure::Status(404));
    let error = api
        .event_quality(Lookback::OneDay, IngestionSource::ConversionsApi)
        .await
        .unwrap_err();
    assert!(matches!(error, QualityError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn an_unreadable_answer_or_no_answer_is_an_error_not_a_panic() {
    let fake = FakePinterest::start().await;
    fake.set_event_quality("1d", "CONVERSIONS_API", json!({"unexpected": true}));
    let error = client(fake.base_url(), ACCESS_TOKEN)
        .event_quality(Lookback::OneDay, IngestionSource::ConversionsApi)
        .await
        .unwrap_err();
    assert!(
        matches!(error, QualityError::UnexpectedResponse(_)),
        "{error:?}"
    );
    // Port 1 on loopback: nothing listens.
    let error = client("http://127.0.0.1:1".to_owned(), ACCESS_TOKEN)
        .event_quality(Lookback::OneDay, IngestionSource::ConversionsApi)
        .await
        .unwrap_err();
    assert!(matches!(error, QualityError::Transport { .. }), "{error:?}");
}

#[tokio::test]
async fn compare_on_the_fakes_scores_flags_the_fair_api_source() {
    let fake = FakePinterest::start().await;
    let api = client(fake.base_url(), ACCESS_TOKEN);
    let mut scores = api
        .event_quality(Lookback::FourteenDays, IngestionSource::ConversionsApi)
        .await
        .unwrap();
    scores.extend(
        api.event_quality(Lookback::FourteenDays, IngestionSource::Tag)
            .await
            .unwrap(),
    );
    let relay = pinrelay::pinterest::MatchKeyCounts {
        events: 100,
        email: 93,
        phone: 70,
        ip_ua: 62,
        click_id: 19,
        external_id: 88,
    };
    let rows = compare(&scores, &relay, "checkout");
    let row = |c: Component| rows.iter().find(|r| r.component == c).unwrap();

    let click = row(Component::ClickIdEpik);
    assert_eq!(click.pinterest_api, Some(18.5));
    assert_eq!(click.pinterest_tag, Some(81.5));
    assert_eq!(click.relay, Some(19.0));
    assert!(click.below_good);
    assert_eq!(click.hint, Some(hint(&Component::ClickIdEpik)));
    assert_eq!(row(Component::ExternalEventId).overlap, Some(43.5));
    assert_eq!(row(Component::ProductId).pinterest_tag, None);
    // The API source is FAIR, so every component it reports is flagged.
    assert!(rows.iter().all(|r| r.below_good && r.hint.is_some()));
    let json = serde_json::to_value(&rows).unwrap();
    assert_eq!(json[0]["component"], "hashed_email");
}
