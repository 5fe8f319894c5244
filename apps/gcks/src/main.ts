import { CodecError } from "@app/codec"; console.log("ok", typeof CodecError);
