"""The vLLM worker side of weight sync, injected as vLLM's ``worker_extension_cls``.

Lives in an importable module (not ``__main__``) because vLLM imports it by name in its worker
processes. The learner side and the rank layout are in ``seedgrpo.learner.weight_sync``.
"""

from __future__ import annotations

__all__ = ["WeightSyncExtension"]


class WeightSyncExtension:
    """Methods mixed into every vLLM worker; called through ``LLM.collective_rpc``."""

    def seedgrpo_join_sync_group(self, host: str, port: int, rank: int, world_size: int,
                                 backend: str) -> None:
        """Join the learner's weight-sync group (a stateless group: no global init)."""
        from seedgrpo.learner.sync_group import open_sync_group

        self._seedgrpo_group = open_sync_group(host, port, rank, world_size, backend)

    def seedgrpo_receive_weights(self, specs: list[tuple[str, str, list[int]]]) -> int:
        """Receive each tensor by broadcast from rank 0, streaming them into the model."""
        from seedgrpo.learner.weight_sync import receive_tensors

        stream = receive_tensors(self._seedgrpo_group, specs)
        self.model_runner.reload_weights(weights_iterator=stream)
        self.seedgrpo_refresh_tied_head()
        return len(specs)

    def seedgrpo_refresh_tied_head(self) -> bool:
        """Re-derive the output head's kernel state after a reload.

        With tied embeddings, ``lm_head`` shares ``embed_tokens.weight``; on CPU its post-load
        step packs that weight into a separate GEMM handle, which an in-place reload of the
        embedding leaves stale (logits then come from the old embedding). Re-running the step
        rebuilds the handle from the new weight; on GPU the step does nothing.
        """
        model = self.model_runner.get_model()
        head = getattr(model, "lm_head", None)
        config = getattr(model, "config", None)
        if head is None or not getattr(config, "tie_word_embeddings", False):
            return False
        head.quant_method.process_weights_after_loading(head)
        return True
