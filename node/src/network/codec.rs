//! The request-response protocol used for block sync: a length-prefixed postcard message.
//!
//! Requests ask for one committed block by hash, a range of committed blocks by height, a
//! peer's head, or the signed proposal of a block someone missed (a validator that saw votes
//! for a block whose proposal never reached it). Responses carry encoded blocks with their
//! commit certificates, or a signed proposal's wire bytes; this module does not decode those,
//! so that verification happens in one place and off the swarm's task.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use protocol::Hash;
use serde::{Deserialize, Serialize};

/// The protocol name negotiated on the stream.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/tally/sync/1");

/// The most blocks one range request may ask for.
pub const MAX_RANGE_BLOCKS: u32 = 32;

/// Largest request accepted: requests are small, so anything bigger is an attack.
const MAX_REQUEST_BYTES: usize = 1024;

/// A question to a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// The committed block with this hash.
    BlockByHash(Hash),
    /// Committed blocks from height `from`, at most `count` of them.
    Range {
        /// First height wanted.
        from: u64,
        /// How many, at most [`MAX_RANGE_BLOCKS`].
        count: u32,
    },
    /// The peer's last committed height.
    Head,
    /// The signed proposal, at the peer's current height, of the block with this hash.
    Proposal(Hash),
}

/// One block as served: its bytes and, for a committed block, its certificate's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedBlock {
    /// The canonical block bytes.
    pub block: Vec<u8>,
    /// The commit certificate's bytes; `None` for a block that is only proposed.
    pub certificate: Option<Vec<u8>>,
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The blocks asked for, in height order (possibly fewer than asked, possibly none).
    Blocks(Vec<ServedBlock>),
    /// The peer's last committed height (0 before the first block).
    Head(u64),
    /// The signed proposal's wire bytes (as gossiped on the consensus topic), if the peer
    /// has it.
    Proposal(Option<Vec<u8>>),
}

/// Length-prefixed postcard, with a size cap on what it will read.
#[derive(Debug, Clone)]
pub struct SyncCodec {
    /// The largest response this node accepts, in bytes.
    pub max_response_bytes: usize,
}

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io, MAX_REQUEST_BYTES).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io, self.max_response_bytes).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: SyncRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, &request).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: SyncResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, &response).await
    }
}

async fn read_message<T, M>(io: &mut T, max_bytes: usize) -> io::Result<M>
where
    T: AsyncRead + Unpin + Send,
    M: for<'de> Deserialize<'de>,
{
    let mut length = [0u8; 4];
    io.read_exact(&mut length).await?;
    let length = u32::from_be_bytes(length) as usize;

    // Checked before allocating, so a peer cannot make us reserve gigabytes.
    if length > max_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "sync message too large",
        ));
    }
    let mut bytes = vec![0u8; length];
    io.read_exact(&mut bytes).await?;
    postcard::from_bytes(&bytes).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}

async fn write_message<T, M>(io: &mut T, message: &M) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
    M: Serialize,
{
    let bytes = postcard::to_stdvec(message).map_err(io::Error::other)?;
    let length = u32::try_from(bytes.len()).map_err(io::Error::other)?;
    io.write_all(&length.to_be_bytes()).await?;
    io.write_all(&bytes).await?;
    io.close().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use libp2p::request_response::Codec;

    #[tokio::test]
    async fn messages_round_trip_and_oversized_ones_are_refused() {
        let mut codec = SyncCodec {
            max_response_bytes: 64,
        };
        let response = SyncResponse::Blocks(vec![ServedBlock {
            block: vec![1, 2, 3],
            certificate: Some(vec![4]),
        }]);

        let mut buffer = Cursor::new(Vec::new());
        codec
            .write_response(&SYNC_PROTOCOL, &mut buffer, response.clone())
            .await
            .unwrap();
        let mut reader = Cursor::new(buffer.into_inner());
        let read = codec
            .read_response(&SYNC_PROTOCOL, &mut reader)
            .await
            .unwrap();
        assert_eq!(read, response);

        let big = SyncResponse::Blocks(vec![ServedBlock {
            block: vec![0; 100],
            certificate: None,
        }]);
        let mut buffer = Cursor::new(Vec::new());
        codec
            .write_response(&SYNC_PROTOCOL, &mut buffer, big)
            .await
            .unwrap();
        let mut reader = Cursor::new(buffer.into_inner());
        assert!(
            codec
                .read_response(&SYNC_PROTOCOL, &mut reader)
                .await
                .is_err()
        );
    }
}
