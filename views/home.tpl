% rebase('base')
<h1 class="page-heading">{{heading}}</h1>
% if articles:
<p class="lede">{{description}}</p>
<div class="items">
  % for article in articles:
  % include('article_item', article=article)
  % end
</div>
% else:
<section class="empty" aria-labelledby="empty-heading">
  <h2 id="empty-heading">No {{'articles' if heading in ('Latest', 'News') else heading.lower()}} published yet</h2>
  <p>Every story here is checked by an editor before it goes live, and none has been published yet. Meanwhile, the card reference is ready: fees, earning rates, transfer partners and {{persona}}'s verdict for every card we cover.</p>
  <p><a class="button" href="/cards">Browse the cards</a></p>
</section>
% end
