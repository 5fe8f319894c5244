// The member agent daemon; see issue 6.
export {};
