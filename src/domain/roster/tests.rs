//! Roster tests: hand-offs across DST, overrides, properties (proptest).

use super::*;
use proptest::prelude::*;

fn layer(members: usize, on_call: usize, shift: &str, start: &str, tz: &str) -> Layer {
    Layer::new(
        LayerSpec {
            id: "l".into(),
            name: String::new(),
            members: (0..members).map(|i| format!("v{i}")).collect(),
            on_call,
            shift: ShiftLength::parse(shift).unwrap(),
            start: start.parse().unwrap(),
            time_zone: tz.into(),
        },
        "layer",
    )
    .unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn shift_lengths_parse_and_print() {
    assert_eq!(ShiftLength::parse("12h"), Ok(ShiftLength::Hours(12)));
    assert_eq!(ShiftLength::parse("1w"), Ok(ShiftLength::Days(7)));
    assert_eq!(ShiftLength::Days(14).to_string(), "2w");
    assert!(ShiftLength::parse("0d").is_err());
    assert!(ShiftLength::parse("3x").is_err());
    assert!(ShiftLength::parse("").is_err());
}

#[test]
fn daily_hand_off_keeps_wall_clock_across_dst() {
    // Europe/Berlin springs forward on 2026-03-29 and falls back on 2026-10-25.
    let l = layer(3, 1, "1d", "2026-03-27T08:00", "Europe/Berlin");
    let tz = TimeZone::get("Europe/Berlin").unwrap();
    for k in 0..5 {
        let local = tz.to_datetime(l.boundary(k));
        assert_eq!(local.hour(), 8, "hand-off {k} at {local}");
    }
    // The day of the spring change is 23 hours long, the autumn one 25.
    assert_eq!(
        l.boundary(2) - l.boundary(1),
        SignedDuration::from_hours(23)
    );
    let autumn = layer(3, 1, "1d", "2026-10-24T08:00", "Europe/Berlin");
    assert_eq!(
        autumn.boundary(1) - autumn.boundary(0),
        SignedDuration::from_hours(25)
    );
}

#[test]
fn hourly_shifts_are_elapsed_time_across_dst() {
    let l = layer(4, 1, "8h", "2026-03-28T22:00", "Europe/Berlin");
    assert_eq!(l.boundary(1) - l.boundary(0), SignedDuration::from_hours(8));
    assert_eq!(l.shift_index(ts("2026-03-29T05:59:59Z")), 1);
}

#[test]
fn overrides_swap_and_cover() {
    let mut r = Roster::new(RosterDoc {
        layers: vec![layer(3, 1, "1d", "2026-11-01T08:00", "Asia/Shanghai").spec],
        overrides: vec![],
    })
    .unwrap();
    let t = ts("2026-11-01T01:00:00Z"); // 09:00 in Shanghai: v0's first shift
    assert_eq!(r.on_call_at(t)[0].volunteer, "v0");
    r.overrides = vec![
        Override {
            id: "o1".into(),
            start: ts("2026-11-01T00:30:00Z"),
            end: ts("2026-11-01T02:00:00Z"),
            volunteer: "v9".into(),
            replaces: Some("v0".into()),
            note: None,
        },
        Override {
            id: "o2".into(),
            start: ts("2026-11-01T00:00:00Z"),
            end: ts("2026-11-02T00:00:00Z"),
            volunteer: "v8".into(),
            replaces: None,
            note: None,
        },
    ];
    let who: Vec<String> = r.on_call_at(t).into_iter().map(|o| o.volunteer).collect();
    assert_eq!(who, ["v9", "v8"]);
    let shifts = r.shifts(ts("2026-11-01T00:00:00Z"), ts("2026-11-02T00:00:00Z"), 1000);
    let v0: Vec<_> = shifts.iter().filter(|s| s.volunteer == "v0").collect();
    // v0 is on from 00:00Z until the swap at 00:30Z, and again from 02:00Z until the
    // hand-off at 08:00 local (00:00Z the next day).
    assert_eq!(v0.len(), 2, "{v0:?}");
    assert_eq!(v0[0].end, ts("2026-11-01T00:30:00Z"));
    assert_eq!(v0[1].start, ts("2026-11-01T02:00:00Z"));
}

#[test]
fn bad_layers_are_reported_by_field() {
    let mut spec = layer(2, 1, "1d", "2026-11-01T08:00", "Asia/Shanghai").spec;
    spec.on_call = 3;
    spec.time_zone = "Mars/Olympus".into();
    let err = Roster::new(RosterDoc {
        layers: vec![spec],
        overrides: vec![],
    })
    .unwrap_err();
    let fields: Vec<&str> = err.iter().map(|(f, _)| f.as_str()).collect();
    assert!(fields.contains(&"layers[0].on_call"), "{err:?}");
    assert!(fields.contains(&"layers[0].time_zone"), "{err:?}");
}

fn arb_layer() -> impl Strategy<Value = Layer> {
    (
        1usize..8,
        1usize..8,
        prop_oneof![
            Just("1d"),
            Just("2d"),
            Just("1w"),
            Just("8h"),
            Just("12h"),
            Just("5h")
        ],
        0i64..400,
        0i64..24,
        prop_oneof![
            Just("Europe/Berlin"),
            Just("Asia/Shanghai"),
            Just("America/New_York")
        ],
    )
        .prop_map(|(m, c, shift, day, hour, tz)| {
            let start = civil::date(2026, 1, 1)
                .at(hour as i8, 0, 0, 0)
                .checked_add(Span::new().days(day))
                .unwrap();
            layer(m, c.min(m), shift, &start.to_string(), tz)
        })
}

proptest! {
    #[test]
    fn every_instant_has_exactly_on_call_members(l in arb_layer(), secs in 0i64..(3 * 366 * 86_400)) {
        let t = Timestamp::from_second(1_767_225_600 + secs).unwrap(); // from 2026-01-01
        let k = l.shift_index(t);
        prop_assert!(l.boundary(k) <= t && t < l.boundary(k + 1));
        let members: BTreeSet<&str> = l.members_of_shift(k).collect();
        prop_assert_eq!(members.len(), l.spec.on_call);
        let roster = Roster { layers: vec![l.clone()], overrides: vec![] };
        prop_assert_eq!(roster.on_call_at(t).len(), l.spec.on_call);
    }

    #[test]
    fn hand_offs_are_neither_lost_nor_doubled(l in arb_layer(), start_day in 0i64..700) {
        // Walk 60 consecutive shifts (across DST changes in Berlin and New York): each
        // starts where the previous ended, strictly later, and is found by its own start.
        let from = Timestamp::from_second(1_767_225_600 + start_day * 86_400).unwrap();
        let k0 = l.shift_index(from);
        for k in k0..k0 + 60 {
            let (a, b) = (l.boundary(k), l.boundary(k + 1));
            prop_assert!(a < b, "shift {} is empty: {} .. {}", k, a, b);
            prop_assert_eq!(l.shift_index(a), k);
            prop_assert_eq!(l.shift_index(b - SignedDuration::from_secs(1)), k);
        }
    }

    #[test]
    fn overrides_win_over_layers(l in arb_layer(), secs in 0i64..(366 * 86_400), len in 60i64..200_000, victim in 0usize..8) {
        let t0 = Timestamp::from_second(1_767_225_600 + secs).unwrap();
        let t1 = t0 + SignedDuration::from_secs(len);
        let victim = format!("v{}", victim % l.spec.members.len());
        let roster = Roster::new(RosterDoc {
            layers: vec![l.spec.clone()],
            overrides: vec![Override {
                id: "o".into(), start: t0, end: t1, volunteer: "cover".into(),
                replaces: Some(victim.clone()), note: None,
            }],
        }).unwrap();
        let plain = Roster { layers: vec![l.clone()], overrides: vec![] };
        for step in 0..20 {
            let t = t0 + SignedDuration::from_secs(len * step / 20);
            let with: Vec<String> = roster.on_call_at(t).into_iter().map(|o| o.volunteer).collect();
            let without: Vec<String> = plain.on_call_at(t).into_iter().map(|o| o.volunteer).collect();
            prop_assert!(!with.contains(&victim));
            prop_assert_eq!(with.len(), without.len());
            prop_assert_eq!(with.contains(&"cover".to_string()), without.contains(&victim));
        }
        prop_assert_eq!(roster.on_call_at(t1), plain.on_call_at(t1));
    }
}
