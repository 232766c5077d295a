//! Serde support for the generated protobuf messages (see tools/codegen), so that they are the IPC
//! types themselves instead of hand-written mirrors.
//!
//! prost stores an enum field as its `i32` wire value. The front end has always received enum fields
//! as the value's *name* (`"SERVING_STATUS_SERVING"`), the protobuf JSON mapping, so the generated
//! fields carry `#[serde(with = "crate::proto_serde::Enumeration::<E>")]`.

use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serializer};

/// A generated protobuf enum, reached through the names prost gives it (impls are generated).
pub(crate) trait ProtoEnum: Sized + Into<i32> + TryFrom<i32> {
    /// The value's name in the `.proto`.
    fn name(&self) -> &'static str;
    /// The value with this `.proto` name.
    fn from_name(name: &str) -> Option<Self>;
}

/// `with` target for an `i32` field holding the enum `E`.
pub(crate) struct Enumeration<E>(PhantomData<E>);

impl<E: ProtoEnum> Enumeration<E> {
    /// The value's name; a value this build does not know (a newer backend) stays a number, as in
    /// the protobuf JSON mapping, rather than failing the whole response.
    pub(crate) fn serialize<S: Serializer>(value: &i32, serializer: S) -> Result<S::Ok, S::Error> {
        match E::try_from(*value) {
            Ok(known) => serializer.serialize_str(known.name()),
            Err(_) => serializer.serialize_i32(*value),
        }
    }

    /// Accepts the name or the number.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NameOrNumber {
            Name(String),
            Number(i32),
        }
        match NameOrNumber::deserialize(deserializer)? {
            NameOrNumber::Number(n) => Ok(n),
            NameOrNumber::Name(name) => E::from_name(&name).map(Into::into).ok_or_else(|| {
                serde::de::Error::custom(format!("unknown enum value name {name:?}"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::proto::health_check_response::ServingStatus;
    use crate::proto::{HealthCheckResponse, PingResponse};

    #[test]
    fn generated_messages_keep_the_json_shape_of_the_old_mirrors() {
        let health = HealthCheckResponse {
            status: ServingStatus::Serving.into(),
            version: "0.1.0".into(),
            protocol_version: 1,
            uptime_ms: 12,
            pid: 34,
        };
        let json = serde_json::to_value(&health).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "status": "SERVING_STATUS_SERVING",
                "version": "0.1.0",
                "protocolVersion": 1,
                "uptimeMs": 12,
                "pid": 34,
            })
        );
        let back: HealthCheckResponse = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, health);

        let ping = PingResponse {
            message: "hi".into(),
            handled_at_unix_micros: 1_700_000_000_000_000,
        };
        let json = serde_json::to_value(&ping).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({ "message": "hi", "handledAtUnixMicros": 1_700_000_000_000_000_i64 })
        );
    }

    #[test]
    fn unknown_enum_values_stay_numbers() {
        let health = HealthCheckResponse {
            status: 99,
            ..HealthCheckResponse::default()
        };
        let json = serde_json::to_value(&health).expect("serializes");
        assert_eq!(json["status"], 99);
        let err =
            serde_json::from_value::<HealthCheckResponse>(serde_json::json!({ "status": "NOPE" }))
                .expect_err("unknown name");
        assert!(err.to_string().contains("NOPE"), "{err}");
    }
}
