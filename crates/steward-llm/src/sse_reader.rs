//! Reading a streamed answer in Server-Sent Events: bytes → events →
//! chunks, for every provider whose API streams SSE. Each wire format
//! supplies an [`EventAssembler`] that turns its events into chunks.

use std::collections::VecDeque;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use steward_core::{LlmChunk, LlmError, LlmStream};
use tracing::Instrument;

use crate::call_log::CallLog;
use crate::errors::{ErrorContext, Phase};
use crate::sse::SseParser;

/// Turns one wire format's events into chunks.
pub(crate) trait EventAssembler: Send {
    /// One event's `data`.
    fn on_data(&mut self, data: &str, out: &mut Vec<LlmChunk>) -> Result<(), LlmError>;
    /// The stream ended; an answer that is not complete is an error.
    fn on_eof(&mut self, parser: &SseParser, out: &mut Vec<LlmChunk>) -> Result<(), LlmError>;
    /// Nothing more is expected.
    fn is_done(&self) -> bool;
    /// The model said it finished: only the stream's formal end is missing,
    /// so a connection that breaks now still delivered the whole answer.
    fn answer_complete(&self) -> bool;
    /// Emits what is held back (tool calls, usage, finish).
    fn finish(&mut self, out: &mut Vec<LlmChunk>);
}

pub(crate) struct SseReader<A> {
    pub body: BoxStream<'static, reqwest::Result<Bytes>>,
    pub parser: SseParser,
    pub assembler: A,
    pub ctx: ErrorContext,
    /// Chunks ready to hand out.
    pub pending: VecDeque<LlmChunk>,
    /// An error to hand out once `pending` is empty.
    pub error: Option<LlmError>,
    pub ended: bool,
    pub log: CallLog,
}

impl<A: EventAssembler + 'static> SseReader<A> {
    /// The answer in `response`, read by `assembler`, as the stream an
    /// [`steward_core::Llm`] returns; each poll runs in the call's span.
    pub fn stream(response: reqwest::Response, assembler: A, ctx: ErrorContext, log: CallLog) -> LlmStream {
        let reader = SseReader {
            body: response.bytes_stream().boxed(),
            parser: SseParser::new(),
            assembler,
            ctx,
            pending: VecDeque::new(),
            error: None,
            ended: false,
            log,
        };
        let stream = futures::stream::unfold(reader, |mut reader| {
            let span = reader.log.span.clone();
            async move {
                let item = reader.next().await?;
                Some((item, reader))
            }
            .instrument(span)
        });
        Box::pin(stream.fuse())
    }

    pub async fn next(&mut self) -> Option<Result<LlmChunk, LlmError>> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                self.log.saw(&chunk);
                return Some(Ok(chunk));
            }
            if let Some(error) = self.error.take() {
                self.ended = true;
                self.log.failed(&error);
                return Some(Err(error));
            }
            if self.ended {
                self.log.succeeded();
                return None;
            }
            self.pull().await;
        }
    }

    /// Reads one network chunk and turns it into chunks or an error.
    async fn pull(&mut self) {
        let mut out = Vec::new();
        let result = match self.body.next().await {
            Some(Ok(bytes)) => {
                let mut events = Vec::new();
                self.parser.feed(&bytes, &mut events);
                self.handle(&events, &mut out)
            }
            Some(Err(_)) if self.assembler.answer_complete() => {
                tracing::debug!("the stream broke after the model finished; accepting the answer");
                self.assembler.finish(&mut out);
                Ok(())
            }
            Some(Err(e)) => Err(self.ctx.transport_error(&e, Phase::Body)),
            None => {
                let mut events = Vec::new();
                self.parser.finish(&mut events);
                self.handle(&events, &mut out).and_then(|()| self.assembler.on_eof(&self.parser, &mut out))
            }
        };
        self.pending.extend(out);
        match result {
            Ok(()) => self.ended = self.assembler.is_done(),
            Err(error) => self.error = Some(error),
        }
    }

    fn handle(&mut self, events: &[String], out: &mut Vec<LlmChunk>) -> Result<(), LlmError> {
        for data in events {
            self.assembler.on_data(data, out)?;
            if self.assembler.is_done() {
                break;
            }
        }
        Ok(())
    }
}
