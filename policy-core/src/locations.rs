//! The built-in table of Azure Peering Service locations, so that a registration may
//! name only its `location` (SPEC §2: where `lat`/`lon` are absent, `location` is
//! looked up here; an unknown name is an error).
//!
//! # What a location is
//!
//! Azure lists Peering Service locations (`ListPeeringServiceLocations`, properties
//! `country`, `state`, `azureRegion`) as the customer's state inside the United States
//! and, elsewhere, mostly as the customer's country. This table follows that split:
//!
//! - the 50 US states and the District of Columbia ([`LocationKind::UsState`], country
//!   `"US"`); "United States" itself is *not* a location;
//! - 127 countries and territories on every inhabited continent
//!   ([`LocationKind::Country`]), covering every country with a Microsoft edge or a MAPS
//!   partner and most others where Azure is sold.
//!
//! Azure also lists subdivisions for a few countries (Swiss cantons, UK council areas);
//! those are not in this table: use the country name, or give `lat`/`lon` directly.
//! The country Georgia is left out because its name is the US state's; a customer
//! there gives `lat`/`lon`.
//!
//! # Where the coordinates come from
//!
//! General geographic knowledge, not an Azure data source (Azure publishes no
//! coordinates for these locations), rounded to two decimals:
//!
//! - a US state's point is an estimate of its population-weighted centre (its
//!   counties' populations and positions), good to roughly half a degree;
//! - a country's point is its principal city (largest city, usually the capital),
//!   named in a comment on its row.
//!
//! The point only has to be close enough to pick the nearest Microsoft edge; a
//! registration that needs more precision gives `lat`/`lon` itself.
//!
//! # How names match
//!
//! [`find`] ignores leading and trailing whitespace and ASCII case (`" new york "`
//! finds `New York`); non-ASCII letters must match exactly (`Côte d'Ivoire`, or its
//! ASCII alias `Cote d'Ivoire`). A few aliases (`UK`, `Korea, South`,
//! `UAE`, …) resolve to their location. [`names`] lists every name and alias, for
//! "did you mean" suggestions.
//!
//! # Invariants (checked by the tests below)
//!
//! [`LOCATIONS`] is sorted by ASCII-lowercased name; names and aliases are unique
//! ignoring ASCII case; every alias resolves; latitudes are within ±90 and longitudes
//! within ±180; every `country` is an ISO 3166-1 alpha-2 code. Lookups never panic.

use LocationKind::{Country, UsState};

/// Whether a location is a US state (or the District of Columbia) or a country.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LocationKind {
    /// One of the 50 US states, or the District of Columbia.
    UsState,
    /// A country or territory outside the United States.
    Country,
}

/// One Azure Peering Service location with a representative point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    /// The name as written in a policy (Azure's spelling where known).
    pub name: &'static str,
    /// ISO 3166-1 alpha-2 code of the country (`"US"` for every US state).
    pub country: &'static str,
    /// US state or country.
    pub kind: LocationKind,
    /// Latitude of the representative point, in degrees (north positive).
    pub lat: f64,
    /// Longitude of the representative point, in degrees (east positive).
    pub lon: f64,
}

const fn loc(
    name: &'static str,
    country: &'static str,
    kind: LocationKind,
    lat: f64,
    lon: f64,
) -> Location {
    Location {
        name,
        country,
        kind,
        lat,
        lon,
    }
}

/// Every built-in location, sorted by ASCII-lowercased name.
pub static LOCATIONS: &[Location] = &[
    loc("Alabama", "US", UsState, 33.00, -86.77),
    loc("Alaska", "US", UsState, 61.40, -148.87),
    loc("Albania", "AL", Country, 41.33, 19.82), // Tirana
    loc("Algeria", "DZ", Country, 36.75, 3.06),  // Algiers
    loc("Angola", "AO", Country, -8.84, 13.23),  // Luanda
    loc("Argentina", "AR", Country, -34.60, -58.38), // Buenos Aires
    loc("Arizona", "US", UsState, 33.36, -111.86),
    loc("Arkansas", "US", UsState, 35.08, -92.41),
    loc("Armenia", "AM", Country, 40.18, 44.51), // Yerevan
    loc("Australia", "AU", Country, -33.87, 151.21), // Sydney
    loc("Austria", "AT", Country, 48.21, 16.37), // Vienna
    loc("Azerbaijan", "AZ", Country, 40.41, 49.87), // Baku
    loc("Bahamas", "BS", Country, 25.05, -77.36), // Nassau
    loc("Bahrain", "BH", Country, 26.23, 50.59), // Manama
    loc("Bangladesh", "BD", Country, 23.81, 90.41), // Dhaka
    loc("Barbados", "BB", Country, 13.10, -59.61), // Bridgetown
    loc("Belgium", "BE", Country, 50.85, 4.35),  // Brussels
    loc("Bolivia", "BO", Country, -17.78, -63.18), // Santa Cruz de la Sierra
    loc("Bosnia and Herzegovina", "BA", Country, 43.86, 18.41), // Sarajevo
    loc("Botswana", "BW", Country, -24.63, 25.92), // Gaborone
    loc("Brazil", "BR", Country, -23.55, -46.63), // Sao Paulo
    loc("Brunei", "BN", Country, 4.89, 114.94),  // Bandar Seri Begawan
    loc("Bulgaria", "BG", Country, 42.70, 23.32), // Sofia
    loc("California", "US", UsState, 35.30, -119.37),
    loc("Cambodia", "KH", Country, 11.56, 104.92), // Phnom Penh
    loc("Cameroon", "CM", Country, 4.05, 9.77),    // Douala
    loc("Canada", "CA", Country, 43.65, -79.38),   // Toronto
    loc("Chile", "CL", Country, -33.45, -70.67),   // Santiago
    loc("China", "CN", Country, 31.23, 121.47),    // Shanghai
    loc("Colombia", "CO", Country, 4.71, -74.07),  // Bogota
    loc("Colorado", "US", UsState, 39.57, -105.12),
    loc("Connecticut", "US", UsState, 41.50, -72.86),
    loc("Costa Rica", "CR", Country, 9.93, -84.08), // San Jose
    loc("Croatia", "HR", Country, 45.81, 15.98),    // Zagreb
    loc("Cyprus", "CY", Country, 35.17, 33.36),     // Nicosia
    loc("Czechia", "CZ", Country, 50.08, 14.44),    // Prague
    loc("Côte d'Ivoire", "CI", Country, 5.36, -4.01), // Abidjan
    loc("Delaware", "US", UsState, 39.34, -75.52),
    loc(
        "Democratic Republic of the Congo",
        "CD",
        Country,
        -4.44,
        15.27,
    ), // Kinshasa
    loc("Denmark", "DK", Country, 55.68, 12.57), // Copenhagen
    loc("District of Columbia", "US", UsState, 38.90, -77.02),
    loc("Dominican Republic", "DO", Country, 18.49, -69.93), // Santo Domingo
    loc("Ecuador", "EC", Country, -2.17, -79.92),            // Guayaquil
    loc("Egypt", "EG", Country, 30.04, 31.24),               // Cairo
    loc("El Salvador", "SV", Country, 13.69, -89.22),        // San Salvador
    loc("Estonia", "EE", Country, 59.44, 24.75),             // Tallinn
    loc("Ethiopia", "ET", Country, 9.03, 38.74),             // Addis Ababa
    loc("Fiji", "FJ", Country, -18.14, 178.44),              // Suva
    loc("Finland", "FI", Country, 60.17, 24.94),             // Helsinki
    loc("Florida", "US", UsState, 27.84, -81.50),
    loc("France", "FR", Country, 48.86, 2.35), // Paris
    loc("Georgia", "US", UsState, 33.27, -83.89),
    loc("Germany", "DE", Country, 52.52, 13.40), // Berlin
    loc("Ghana", "GH", Country, 5.56, -0.20),    // Accra
    loc("Greece", "GR", Country, 37.98, 23.73),  // Athens
    loc("Guatemala", "GT", Country, 14.63, -90.51), // Guatemala City
    loc("Hawaii", "US", UsState, 21.05, -157.43),
    loc("Honduras", "HN", Country, 14.07, -87.19), // Tegucigalpa
    loc("Hong Kong", "HK", Country, 22.32, 114.17), // Hong Kong
    loc("Hungary", "HU", Country, 47.50, 19.04),   // Budapest
    loc("Iceland", "IS", Country, 64.15, -21.94),  // Reykjavik
    loc("Idaho", "US", UsState, 44.03, -115.24),
    loc("Illinois", "US", UsState, 41.28, -88.38),
    loc("India", "IN", Country, 19.08, 72.88), // Mumbai
    loc("Indiana", "US", UsState, 39.90, -86.26),
    loc("Indonesia", "ID", Country, -6.21, 106.85), // Jakarta
    loc("Iowa", "US", UsState, 41.89, -92.95),
    loc("Iraq", "IQ", Country, 33.31, 44.36),     // Baghdad
    loc("Ireland", "IE", Country, 53.35, -6.26),  // Dublin
    loc("Israel", "IL", Country, 32.09, 34.78),   // Tel Aviv
    loc("Italy", "IT", Country, 41.90, 12.50),    // Rome
    loc("Jamaica", "JM", Country, 18.02, -76.80), // Kingston
    loc("Japan", "JP", Country, 35.68, 139.69),   // Tokyo
    loc("Jordan", "JO", Country, 31.95, 35.93),   // Amman
    loc("Kansas", "US", UsState, 38.55, -96.73),
    loc("Kazakhstan", "KZ", Country, 43.24, 76.89), // Almaty
    loc("Kentucky", "US", UsState, 37.81, -85.47),
    loc("Kenya", "KE", Country, -1.29, 36.82),   // Nairobi
    loc("Kuwait", "KW", Country, 29.38, 47.99),  // Kuwait City
    loc("Laos", "LA", Country, 17.97, 102.63),   // Vientiane
    loc("Latvia", "LV", Country, 56.95, 24.11),  // Riga
    loc("Lebanon", "LB", Country, 33.89, 35.50), // Beirut
    loc("Lithuania", "LT", Country, 54.69, 25.28), // Vilnius
    loc("Louisiana", "US", UsState, 30.64, -91.45),
    loc("Luxembourg", "LU", Country, 49.61, 6.13), // Luxembourg
    loc("Macao", "MO", Country, 22.20, 113.54),    // Macao
    loc("Madagascar", "MG", Country, -18.88, 47.51), // Antananarivo
    loc("Maine", "US", UsState, 44.26, -69.77),
    loc("Malaysia", "MY", Country, 3.15, 101.69), // Kuala Lumpur
    loc("Malta", "MT", Country, 35.90, 14.51),    // Valletta
    loc("Maryland", "US", UsState, 39.11, -76.79),
    loc("Massachusetts", "US", UsState, 42.27, -71.36),
    loc("Mauritius", "MU", Country, -20.16, 57.50), // Port Louis
    loc("Mexico", "MX", Country, 19.43, -99.13),    // Mexico City
    loc("Michigan", "US", UsState, 42.87, -84.17),
    loc("Minnesota", "US", UsState, 45.21, -93.88),
    loc("Mississippi", "US", UsState, 32.63, -89.66),
    loc("Missouri", "US", UsState, 38.35, -92.11),
    loc("Moldova", "MD", Country, 47.01, 28.86), // Chisinau
    loc("Mongolia", "MN", Country, 47.89, 106.91), // Ulaanbaatar
    loc("Montana", "US", UsState, 46.66, -110.56),
    loc("Montenegro", "ME", Country, 42.44, 19.26), // Podgorica
    loc("Morocco", "MA", Country, 33.57, -7.59),    // Casablanca
    loc("Mozambique", "MZ", Country, -25.97, 32.57), // Maputo
    loc("Myanmar", "MM", Country, 16.84, 96.17),    // Yangon
    loc("Namibia", "NA", Country, -22.56, 17.08),   // Windhoek
    loc("Nebraska", "US", UsState, 41.17, -97.43),
    loc("Nepal", "NP", Country, 27.72, 85.32), // Kathmandu
    loc("Netherlands", "NL", Country, 52.37, 4.90), // Amsterdam
    loc("Nevada", "US", UsState, 37.00, -116.20),
    loc("New Hampshire", "US", UsState, 43.10, -71.47),
    loc("New Jersey", "US", UsState, 40.44, -74.43),
    loc("New Mexico", "US", UsState, 34.69, -106.27),
    loc("New York", "US", UsState, 41.42, -74.56),
    loc("New Zealand", "NZ", Country, -36.85, 174.76), // Auckland
    loc("Nicaragua", "NI", Country, 12.11, -86.24),    // Managua
    loc("Nigeria", "NG", Country, 6.52, 3.38),         // Lagos
    loc("North Carolina", "US", UsState, 35.55, -79.51),
    loc("North Dakota", "US", UsState, 47.33, -99.30),
    loc("North Macedonia", "MK", Country, 42.00, 21.43), // Skopje
    loc("Norway", "NO", Country, 59.91, 10.75),          // Oslo
    loc("Ohio", "US", UsState, 40.48, -82.72),
    loc("Oklahoma", "US", UsState, 35.60, -96.82),
    loc("Oman", "OM", Country, 23.59, 58.41), // Muscat
    loc("Oregon", "US", UsState, 44.78, -122.55),
    loc("Pakistan", "PK", Country, 24.86, 67.01), // Karachi
    loc("Panama", "PA", Country, 8.98, -79.52),   // Panama City
    loc("Papua New Guinea", "PG", Country, -9.44, 147.18), // Port Moresby
    loc("Paraguay", "PY", Country, -25.26, -57.58), // Asuncion
    loc("Pennsylvania", "US", UsState, 40.42, -76.92),
    loc("Peru", "PE", Country, -12.05, -77.04), // Lima
    loc("Philippines", "PH", Country, 14.60, 120.98), // Manila
    loc("Poland", "PL", Country, 52.23, 21.01), // Warsaw
    loc("Portugal", "PT", Country, 38.72, -9.14), // Lisbon
    loc("Puerto Rico", "PR", Country, 18.47, -66.11), // San Juan
    loc("Qatar", "QA", Country, 25.29, 51.53),  // Doha
    loc("Rhode Island", "US", UsState, 41.75, -71.45),
    loc("Romania", "RO", Country, 44.43, 26.10), // Bucharest
    loc("Rwanda", "RW", Country, -1.95, 30.06),  // Kigali
    loc("Saudi Arabia", "SA", Country, 24.71, 46.68), // Riyadh
    loc("Senegal", "SN", Country, 14.69, -17.44), // Dakar
    loc("Serbia", "RS", Country, 44.79, 20.45),  // Belgrade
    loc("Singapore", "SG", Country, 1.35, 103.82), // Singapore
    loc("Slovakia", "SK", Country, 48.15, 17.11), // Bratislava
    loc("Slovenia", "SI", Country, 46.06, 14.51), // Ljubljana
    loc("South Africa", "ZA", Country, -26.20, 28.05), // Johannesburg
    loc("South Carolina", "US", UsState, 34.05, -81.03),
    loc("South Dakota", "US", UsState, 44.02, -98.99),
    loc("South Korea", "KR", Country, 37.57, 126.98), // Seoul
    loc("Spain", "ES", Country, 40.42, -3.70),        // Madrid
    loc("Sri Lanka", "LK", Country, 6.93, 79.86),     // Colombo
    loc("Sweden", "SE", Country, 59.33, 18.07),       // Stockholm
    loc("Switzerland", "CH", Country, 47.38, 8.54),   // Zurich
    loc("Taiwan", "TW", Country, 25.03, 121.57),      // Taipei
    loc("Tanzania", "TZ", Country, -6.79, 39.28),     // Dar es Salaam
    loc("Tennessee", "US", UsState, 35.80, -86.40),
    loc("Texas", "US", UsState, 30.84, -97.31),
    loc("Thailand", "TH", Country, 13.76, 100.50), // Bangkok
    loc("Trinidad and Tobago", "TT", Country, 10.66, -61.51), // Port of Spain
    loc("Tunisia", "TN", Country, 36.81, 10.18),   // Tunis
    loc("Turkey", "TR", Country, 41.01, 28.98),    // Istanbul
    loc("Uganda", "UG", Country, 0.35, 32.58),     // Kampala
    loc("Ukraine", "UA", Country, 50.45, 30.52),   // Kyiv
    loc("United Arab Emirates", "AE", Country, 25.20, 55.27), // Dubai
    loc("United Kingdom", "GB", Country, 51.51, -0.13), // London
    loc("Uruguay", "UY", Country, -34.90, -56.16), // Montevideo
    loc("Utah", "US", UsState, 40.43, -111.90),
    loc("Uzbekistan", "UZ", Country, 41.30, 69.24), // Tashkent
    loc("Venezuela", "VE", Country, 10.49, -66.88), // Caracas
    loc("Vermont", "US", UsState, 44.20, -72.81),
    loc("Vietnam", "VN", Country, 10.82, 106.63), // Ho Chi Minh City
    loc("Virginia", "US", UsState, 37.86, -77.75),
    loc("Washington", "US", UsState, 47.29, -121.53),
    loc("West Virginia", "US", UsState, 38.78, -80.87),
    loc("Wisconsin", "US", UsState, 43.73, -88.98),
    loc("Wyoming", "US", UsState, 42.60, -106.80),
    loc("Zambia", "ZM", Country, -15.42, 28.28), // Lusaka
    loc("Zimbabwe", "ZW", Country, -17.83, 31.05), // Harare
];

/// Other spellings, each mapped to a name in [`LOCATIONS`].
static ALIASES: &[(&str, &str)] = &[
    ("UK", "United Kingdom"),
    ("Great Britain", "United Kingdom"),
    ("Britain", "United Kingdom"),
    ("Korea, South", "South Korea"),
    ("Korea", "South Korea"),
    ("Republic of Korea", "South Korea"),
    ("Czech Republic", "Czechia"),
    ("T\u{fc}rkiye", "Turkey"),
    ("Turkiye", "Turkey"),
    ("Viet Nam", "Vietnam"),
    ("Cote d'Ivoire", "C\u{f4}te d'Ivoire"),
    ("Ivory Coast", "C\u{f4}te d'Ivoire"),
    ("DR Congo", "Democratic Republic of the Congo"),
    ("Congo (DRC)", "Democratic Republic of the Congo"),
    ("UAE", "United Arab Emirates"),
    ("Hong Kong SAR", "Hong Kong"),
    ("Macau", "Macao"),
    ("Macao SAR", "Macao"),
    ("Macedonia", "North Macedonia"),
    ("Burma", "Myanmar"),
    ("Holland", "Netherlands"),
    ("The Netherlands", "Netherlands"),
    ("The Bahamas", "Bahamas"),
    ("Washington DC", "District of Columbia"),
    ("Washington, D.C.", "District of Columbia"),
];

/// Looks a location up by name or alias, ignoring ASCII case and surrounding
/// whitespace.
///
/// ```
/// use policy_core::{find_location as find, LocationKind};
///
/// let wa = find("  washington ").unwrap();
/// assert_eq!(wa.name, "Washington");
/// assert_eq!(wa.kind, LocationKind::UsState);
/// assert_eq!(find("UK").unwrap().name, "United Kingdom");
/// // Not a location: the United States is split into states.
/// assert!(find("United States").is_none());
/// assert!(find("Atlantis").is_none());
/// ```
pub fn find(name: &str) -> Option<&'static Location> {
    let name = name.trim();
    let canonical = ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
        .map_or(name, |(_, target)| *target);
    LOCATIONS
        .iter()
        .find(|l| l.name.eq_ignore_ascii_case(canonical))
}

/// Every location name, then every alias, for "did you mean" suggestions.
///
/// ```
/// use policy_core::location_names;
///
/// assert!(location_names().any(|n| n == "Japan"));
/// assert!(location_names().any(|n| n == "UK"));
/// assert!(!location_names().any(|n| n == "United States"));
/// ```
pub fn names() -> impl Iterator<Item = &'static str> {
    LOCATIONS
        .iter()
        .map(|l| l.name)
        .chain(ALIASES.iter().map(|(alias, _)| *alias))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use alloc::string::String;
    use alloc::vec::Vec;

    fn key(s: &str) -> String {
        s.to_ascii_lowercase()
    }

    fn near(l: &Location, lat: f64, lon: f64, tol: f64) -> bool {
        (l.lat - lat).abs() <= tol && (l.lon - lon).abs() <= tol
    }

    #[test]
    fn table_has_every_us_state_and_about_a_hundred_countries() {
        let states = LOCATIONS.iter().filter(|l| l.kind == UsState).count();
        let countries = LOCATIONS.iter().filter(|l| l.kind == Country).count();
        assert_eq!(states, 51, "50 states + District of Columbia");
        assert!(countries >= 100, "only {countries} countries");
    }

    #[test]
    fn sorted_by_lowercased_name() {
        for pair in LOCATIONS.windows(2) {
            assert!(
                key(pair[0].name) < key(pair[1].name),
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn names_and_aliases_unique_case_insensitively() {
        let mut seen = BTreeSet::new();
        for n in names() {
            assert!(seen.insert(key(n)), "duplicate name or alias {n:?}");
        }
        assert_eq!(seen.len(), LOCATIONS.len() + ALIASES.len());
    }

    #[test]
    fn names_are_trimmed_and_non_empty() {
        for n in names() {
            assert!(!n.is_empty());
            assert_eq!(n, n.trim(), "{n:?} has surrounding whitespace");
        }
    }

    #[test]
    fn coordinates_in_range() {
        for l in LOCATIONS {
            assert!(
                l.lat.is_finite() && (-90.0..=90.0).contains(&l.lat),
                "{}",
                l.name
            );
            assert!(
                l.lon.is_finite() && (-180.0..=180.0).contains(&l.lon),
                "{}",
                l.name
            );
        }
    }

    #[test]
    fn country_codes_are_two_uppercase_letters() {
        for l in LOCATIONS {
            assert_eq!(l.country.len(), 2, "{}", l.name);
            assert!(
                l.country.bytes().all(|b| b.is_ascii_uppercase()),
                "{}: {}",
                l.name,
                l.country
            );
        }
    }

    #[test]
    fn us_states_are_in_the_us_and_countries_are_not() {
        for l in LOCATIONS {
            match l.kind {
                UsState => assert_eq!(l.country, "US", "{}", l.name),
                Country => assert_ne!(l.country, "US", "{}", l.name),
            }
        }
    }

    #[test]
    fn country_codes_unique_among_countries() {
        let mut seen = BTreeSet::new();
        for l in LOCATIONS.iter().filter(|l| l.kind == Country) {
            assert!(seen.insert(l.country), "{} reused by {}", l.country, l.name);
        }
    }

    #[test]
    fn every_alias_resolves_to_its_target() {
        for (alias, target) in ALIASES {
            let l = find(alias).unwrap_or_else(|| panic!("alias {alias:?} does not resolve"));
            assert_eq!(l.name, *target);
        }
    }

    #[test]
    fn every_name_finds_itself() {
        for l in LOCATIONS {
            assert_eq!(find(l.name), Some(l));
        }
    }

    #[test]
    fn find_ignores_ascii_case_and_surrounding_whitespace() {
        let expected = find("New York").unwrap();
        for q in ["new york", "NEW YORK", "  New York\t", "\nnEw YoRk \r\n"] {
            assert_eq!(find(q), Some(expected), "{q:?}");
        }
        assert_eq!(find(" uk ").unwrap().name, "United Kingdom");
        assert_eq!(find("KOREA, SOUTH").unwrap().name, "South Korea");
    }

    #[test]
    fn find_rejects_unknown_and_partial_names() {
        for q in [
            "",
            "   ",
            "United States",
            "USA",
            "New",
            "Yorkshire",
            "Washingto",
        ] {
            assert!(find(q).is_none(), "{q:?} should not be found");
        }
    }

    #[test]
    fn spot_checks() {
        let wa = find("Washington").unwrap();
        assert_eq!((wa.kind, wa.country), (UsState, "US"));
        assert!(near(wa, 47.4, -120.7, 1.0), "{wa:?}");

        let dc = find("Washington DC").unwrap();
        assert_eq!(dc.name, "District of Columbia");
        assert!(near(dc, 38.9, -77.0, 0.2), "{dc:?}");

        let jp = find("Japan").unwrap();
        assert_eq!((jp.kind, jp.country), (Country, "JP"));
        assert!(near(jp, 35.7, 139.7, 0.5), "{jp:?}");

        let nl = find("netherlands").unwrap();
        assert_eq!((nl.name, nl.country), ("Netherlands", "NL"));
        assert!(near(nl, 52.4, 4.9, 0.5), "{nl:?}");

        let gb = find("United Kingdom").unwrap();
        assert_eq!(gb.country, "GB");
        assert!(near(gb, 51.5, -0.1, 0.5), "{gb:?}");

        let au = find("Australia").unwrap();
        assert!(au.lat < 0.0 && au.lon > 0.0, "{au:?}");
        let br = find("Brazil").unwrap();
        assert!(br.lat < 0.0 && br.lon < 0.0, "{br:?}");
    }

    #[test]
    fn every_continent_is_covered() {
        let codes: Vec<&str> = LOCATIONS.iter().map(|l| l.country).collect();
        // Europe, North America, South America, Asia, Middle East, Africa, Oceania.
        for c in ["NL", "CA", "BR", "JP", "AE", "ZA", "AU"] {
            assert!(codes.contains(&c), "{c} missing");
        }
    }

    #[test]
    fn every_edge_metro_country_has_a_location() {
        // Countries of the Microsoft edge metros the project uses (US via its states).
        for c in [
            "NL", "GB", "DE", "FR", "IE", "ES", "IT", "CH", "AT", "SE", "NO", "DK", "FI", "PL",
            "US", "CA", "BR", "JP", "SG", "HK", "KR", "IN", "AU", "NZ", "ZA", "NG", "KE", "AE",
        ] {
            assert!(LOCATIONS.iter().any(|l| l.country == c), "{c} missing");
        }
    }
}
