//! From a CAP `<info>` to the incident it raises: region (GB/T 2260 geocode, else an areaDesc
//! that is a region's name), kind (`[cap.kinds]` over the built-in table), level (severity),
//! title (headline); every refusal names the CAP element behind it.

use super::*;

/// The incident an alert would raise: 422 naming the CAP element behind each problem.
pub(super) fn body_of(st: &AppState, alert: &Alert) -> Result<RaiseIncident, ApiError> {
    let info = alert
        .info
        .as_ref()
        .ok_or_else(|| ApiError::invalid("alert.info", "required to raise"))?;
    let mut errs = Vec::new();
    let region = region_of(st, info);
    if region.is_none() {
        errs.push(FieldError::new(
            "alert.info.area",
            "no <geocode> holds a GB/T 2260 code of a region muster knows, and no <areaDesc> is a region's name",
        ));
    }
    let kind = kind_of(st, info);
    if kind.is_none() {
        errs.push(FieldError::new(
            "alert.info.event",
            format!(
                "no incident kind for event `{}` or categories {} (add it to [cap.kinds])",
                info.event,
                info.categories.join(", ")
            ),
        ));
    }
    let level = cap::level_of(&info.severity);
    if level.is_none() {
        errs.push(FieldError::new(
            "alert.info.severity",
            format!(
                "`{}` gives no level: use Extreme, Severe, Moderate, Minor (or 红/橙/黄/蓝, I–IV)",
                info.severity
            ),
        ));
    }
    let (Some(region), Some(kind), Some(level)) = (region, kind, level) else {
        return Err(ApiError::Invalid(errs));
    };
    let title: String = info
        .headline
        .clone()
        .unwrap_or_else(|| info.event.clone())
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    Ok(RaiseIncident {
        kind,
        level: Level::new(i64::from(level))
            .map_err(|e| ApiError::invalid("alert.info.severity", e))?,
        region: region.to_string(),
        title: title.trim().to_string(),
        mode: if alert.status == CapStatus::Exercise {
            Mode::Drill
        } else {
            Mode::Live
        },
        location: None,
        idempotency_key: None,
        include_deployed: false,
    })
}

/// A plan or scope refusal of a body taken from an alert, naming the CAP elements.
pub(super) fn in_cap_terms(e: ApiError) -> ApiError {
    match e {
        ApiError::Invalid(errs) => ApiError::Invalid(
            errs.into_iter()
                .map(|f| {
                    let field = match f.field.as_str() {
                        "kind" => "alert.info.event",
                        "level" => "alert.info.severity",
                        "region" => "alert.info.area",
                        "title" => "alert.info.headline",
                        other => other,
                    };
                    FieldError::new(field, f.reason)
                })
                .collect(),
        ),
        other => other,
    }
}

/// The region: a GB/T 2260 geocode of a known region, else an areaDesc that is a region's name.
fn region_of(st: &AppState, info: &Info) -> Option<RegionCode> {
    let regions = &st.ctx.seed.regions;
    let by_code = info
        .areas
        .iter()
        .flat_map(|a| &a.geocodes)
        .find_map(|(name, value)| {
            let n = name.to_ascii_uppercase();
            let gb = n.contains("2260") || n.starts_with("GB") || n.contains("ADMINISTRATIVE");
            let digits = value.trim();
            (gb && matches!(digits.len(), 6 | 9) && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| regions.lookup(digits).map(|r| r.code.clone()))
                .flatten()
        });
    by_code.or_else(|| {
        info.areas
            .iter()
            .find_map(|a| regions.find_by_name(a.desc.trim()).map(|r| r.code.clone()))
    })
}

/// The kind: `<event>`, then each `<category>`, through `[cap.kinds]` over the built-in table.
fn kind_of(st: &AppState, info: &Info) -> Option<String> {
    let mut table: HashMap<String, String> = default_kinds().into_iter().collect();
    for (k, v) in &st.ctx.config.cap.kinds {
        table.insert(fold(k), v.clone());
    }
    std::iter::once(&info.event)
        .chain(&info.categories)
        .find_map(|k| table.get(&fold(k)).cloned())
}
