//! The generated code names everything by absolute path: a module that
//! shadows the prelude (`Result`, `Ok`, `Err`, `String`, `Option`, `Send`,
//! `Vec`, `Some`, `None`, `Pin`, and modules `core`, `std`, `webpubsub`) and
//! imports nothing from webpubsub still compiles. `Box` has its own case:
//! `hygiene_box.rs`.

#![allow(dead_code, non_camel_case_types)]

#[derive(serde::Deserialize)]
struct Typing {
    typing: bool,
}

mod app {
    type Result<T> = ::std::result::Result<T, ()>;
    struct Ok;
    struct Err;
    struct String;
    struct Option;
    struct Some;
    struct None;
    struct Vec;
    trait Send {}
    trait Sync {}
    trait Sized {}
    trait Into {}
    trait From {}
    trait Future {}
    struct Pin;
    mod core {}
    mod std {}
    mod webpubsub {}
    mod async_trait {}
    mod serde_json {}

    use super::Typing;

    pub(crate) struct Chat<S> {
        pub(crate) state: ::std::sync::Arc<S>,
    }

    #[::webpubsub::event_handler]
    impl<S: ::core::marker::Send + ::core::marker::Sync + 'static> Chat<S> {
        async fn connect(
            &self,
            req: ::webpubsub::ConnectEventRequest,
        ) -> ::core::result::Result<
            ::webpubsub::ConnectEventResponse,
            ::webpubsub::EventErrorResponse,
        > {
            ::core::result::Result::Ok(
                ::webpubsub::ConnectEventResponse::new().user_id(req.context.connection_id),
            )
        }

        async fn connected(&self) {}

        async fn disconnected(&self, _req: ::webpubsub::DisconnectedEventRequest) {}

        async fn group_joined(&self, _req: ::webpubsub::events::GroupJoinedEventRequest) {}

        async fn group_left(&self) {}

        #[user_event("request")]
        async fn request(
            &self,
            req: ::webpubsub::UserEventRequest,
        ) -> ::webpubsub::UserEventResponse {
            ::webpubsub::UserEventResponse::from(req.data)
        }

        #[user_event("typing")]
        async fn typing(
            &self,
            ctx: ::webpubsub::ConnectionContext,
            body: ::webpubsub::extract::Json<Typing>,
        ) -> ::core::result::Result<::std::string::String, ::webpubsub::EventErrorResponse>
        {
            let _ = (ctx, body.0.typing);
            ::core::result::Result::Ok(::std::string::String::new())
        }

        #[user_event("text")]
        async fn text(
            &self,
            text: ::std::string::String,
        ) -> ::core::option::Option<::std::string::String> {
            ::core::option::Option::Some(text)
        }

        #[user_event("nothing")]
        async fn nothing(&self) {}

        #[user_event(fallback)]
        async fn other(&self, _data: ::webpubsub::events::EventData) -> &'static str {
            "other"
        }

        fn helper(&self) -> Result<()> {
            let _ = (Ok, Err, String, Option, Some, None, Vec, Pin);
            ::core::result::Result::Ok(())
        }
    }
}

fn main() {
    let chat = app::Chat {
        state: std::sync::Arc::new(()),
    };
    webpubsub::EventRouter::builder()
        .hub("chat", chat)
        .access_key("k")
        .build()
        .unwrap();
}
